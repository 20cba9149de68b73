// Package statslog turns a Stats struct into log attributes and writes the
// periodic stats line, one way for the agent, the publisher and the
// transports.
//
// A Stats type implements [log/slog.LogValuer] with [Value]: each field
// tagged `log:"key"` becomes an attribute with that key, in field order, and
// untagged fields stay out of the line (they are still in Stats()). The tags
// are the stats line's contract with the scripts and tools that read it: a
// key, once logged, keeps its name.
package statslog

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"
)

// fields caches, per struct type, the indexes and keys of its tagged fields.
var fields sync.Map // reflect.Type -> []field

type field struct {
	index int
	key   string
}

func tagged(t reflect.Type) []field {
	if f, ok := fields.Load(t); ok {
		return f.([]field)
	}
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		key, ok := sf.Tag.Lookup("log")
		if !ok || key == "" || key == "-" || !sf.IsExported() {
			continue
		}
		switch sf.Type.Kind() {
		case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint32, reflect.Int32, reflect.Float64:
		default:
			panic(fmt.Sprintf("statslog: %s.%s: field of type %s cannot be logged", t, sf.Name, sf.Type))
		}
		fs = append(fs, field{i, key})
	}
	fields.Store(t, fs)
	return fs
}

// Value returns the tagged fields of stats, a struct, as a group value. It
// panics if stats is not a struct or a tagged field is not a number: both are
// mistakes in the Stats type, found by its first test.
func Value(stats any) slog.Value {
	v := reflect.ValueOf(stats)
	if v.Kind() != reflect.Struct {
		panic(fmt.Sprintf("statslog: Value of %T, want a struct", stats))
	}
	fs := tagged(v.Type())
	attrs := make([]slog.Attr, 0, len(fs))
	for _, f := range fs {
		fv := v.Field(f.index)
		switch fv.Kind() {
		case reflect.Uint64, reflect.Uint32:
			attrs = append(attrs, slog.Uint64(f.key, fv.Uint()))
		case reflect.Float64:
			attrs = append(attrs, slog.Float64(f.key, fv.Float()))
		default:
			attrs = append(attrs, slog.Int64(f.key, fv.Int()))
		}
	}
	return slog.GroupValue(attrs...)
}

// Every logs msg at level Info every d, with the attributes of stats()
// inline (unprefixed: `msg="agent stats" collections=12 …`), until ctx ends.
// A d of zero or less logs nothing and returns at once.
func Every(ctx context.Context, log *slog.Logger, msg string, d time.Duration, stats func() slog.LogValuer) {
	if d <= 0 {
		return
	}
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// An attribute with an empty key whose value is a group is
			// written inline by slog's handlers.
			log.Info(msg, slog.Any("", stats()))
		}
	}
}
