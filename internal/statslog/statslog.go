// Package statslog turns a Stats struct into log attributes and writes the
// periodic stats line, one way for the agent, the publisher and the
// transports.
//
// A Stats type implements [log/slog.LogValuer] with [Value]: each field
// tagged `log:"key"` becomes an attribute with that key, in field order, and
// untagged fields stay out of the line (they are still in Stats()). The tags
// are the stats line's contract with the scripts and tools that read it: a
// key, once logged, keeps its name.
//
// A tag may carry options after the key, comma-separated, which the line
// ignores: `log:"queued_batches,gauge"` marks a value that goes up and down
// (a level, not a count), for readers such as the self-metrics that export
// the same fields ([Fields]).
package statslog

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"
)

// fields caches, per struct type, the indexes and keys of its tagged fields.
var fields sync.Map // reflect.Type -> []field

type field struct {
	index int
	key   string
	gauge bool
}

// Field is one tagged field of a Stats type.
type Field struct {
	Index int    // the field's index in its struct
	Key   string // its log key
	Gauge bool   // tagged with the gauge option: a level, not a count
}

// Fields returns the tagged fields of t, a struct type, in field order. It
// panics as Value does.
func Fields(t reflect.Type) []Field {
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("statslog: Fields of %s, want a struct", t))
	}
	fs := tagged(t)
	out := make([]Field, len(fs))
	for i, f := range fs {
		out[i] = Field{Index: f.index, Key: f.key, Gauge: f.gauge}
	}
	return out
}

// Number returns the value of field f of stats, a struct of f's type, as a
// float64.
func Number(stats reflect.Value, f Field) float64 {
	fv := stats.Field(f.Index)
	switch fv.Kind() {
	case reflect.Uint64, reflect.Uint32:
		return float64(fv.Uint())
	case reflect.Float64:
		return fv.Float()
	default:
		return float64(fv.Int())
	}
}

func tagged(t reflect.Type) []field {
	if f, ok := fields.Load(t); ok {
		return f.([]field)
	}
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("log")
		key, opts, _ := strings.Cut(tag, ",")
		if !ok || key == "" || key == "-" || !sf.IsExported() {
			continue
		}
		switch sf.Type.Kind() {
		case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint32, reflect.Int32, reflect.Float64:
		default:
			panic(fmt.Sprintf("statslog: %s.%s: field of type %s cannot be logged", t, sf.Name, sf.Type))
		}
		gauge := false
		for o := range strings.SplitSeq(opts, ",") {
			switch o {
			case "":
			case "gauge":
				gauge = true
			default:
				panic(fmt.Sprintf("statslog: %s.%s: unknown tag option %q", t, sf.Name, o))
			}
		}
		fs = append(fs, field{i, key, gauge})
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

// WithGroup returns v, a group value such as Value returns, with a group
// attribute key of attrs after its own; v as it is when attrs is empty. The
// agent and the publisher add their stages' counters so (key "stages", one
// group per stage), after the keys of the line that scripts read.
func WithGroup(v slog.Value, key string, attrs []slog.Attr) slog.Value {
	if len(attrs) == 0 || v.Kind() != slog.KindGroup {
		return v
	}
	own := v.Group()
	all := make([]slog.Attr, 0, len(own)+1)
	all = append(all, own...)
	return slog.GroupValue(append(all, slog.Attr{Key: key, Value: slog.GroupValue(attrs...)})...)
}
