package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"sync"
	"syscall"

	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/publisher/publisherconfig"
	"github.com/meterkit/meter/transport/seal"
)

// reloader applies, on SIGHUP, the key file read again (with -keys, as
// before there was a config file) and the config file read again with the
// same flags over it: the sinks and stages (see
// publisherconfig.Config.Reload). A changed key that needs a restart, or a
// file that does not load, is refused and the running config stays.
type reloader struct {
	file  string
	fs    *flag.FlagSet
	log   *slog.Logger
	p     *publisher.Publisher
	kr    *seal.Keyring // nil without a key file
	mu    sync.Mutex    // guards cfg and parts
	cfg   *publisherconfig.Config
	parts *publisherconfig.Parts
}

func (r *reloader) reload(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kr != nil {
		// Rotated and revoked keys take effect without a restart.
		if err := r.kr.Reload(); err != nil {
			r.log.Error("SIGHUP: key file not reloaded; the keys in use stay", "file", r.cfg.Keys, "err", err)
		} else {
			r.log.Info("SIGHUP: key file reloaded", "file", r.cfg.Keys)
		}
	}
	next, err := load(r.file, r.fs)
	if err != nil {
		r.log.Error("SIGHUP: config not reloaded; the running config stays", "file", r.file, "err", err)
		return
	}
	parts, changes, err := r.cfg.Reload(ctx, r.parts, next)
	if err != nil {
		r.log.Error("SIGHUP: config not reloaded; the running config stays", "file", r.file, "err", err)
		return
	}
	if err := r.p.Reconfigure(ctx, next.ReconfigureOptions(parts)...); err != nil {
		closeNew(ctx, parts, r.parts)
		r.log.Error("SIGHUP: config not applied; the running config stays", "file", r.file, "err", err)
		return
	}
	r.cfg, r.parts = next, parts
	if len(changes) == 0 {
		r.log.Info("SIGHUP: config reloaded; nothing changed", "file", r.file)
		return
	}
	for _, c := range changes {
		r.log.Info("SIGHUP: config reloaded", "file", r.file, "change", c)
	}
}

// closeNew closes what Reload opened for parts, that is what old does not
// hold, when the publisher did not take it.
func closeNew(ctx context.Context, parts, old *publisherconfig.Parts) {
	fresh := &publisherconfig.Parts{}
	for _, s := range parts.Sinks {
		if !slices.ContainsFunc(old.Sinks, func(o publisherconfig.Opened) bool { return same(o.Sink, s.Sink) }) {
			fresh.Sinks = append(fresh.Sinks, s)
		}
	}
	if !same(parts.Stage, old.Stage) {
		fresh.Stage = parts.Stage
	}
	fresh.Close(ctx)
}

// onHUP calls reload on each SIGHUP (systemctl reload) until ctx ends; a
// SIGHUP never kills the publisher. The returned func stops it and waits.
func onHUP(ctx context.Context, reload func(context.Context)) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(ctx)
			}
		}
	}()
	return func() { signal.Stop(hup); cancel(); <-done }
}

// same reports whether a and b are the same value; values that cannot be
// compared (where == would panic) are never the same.
func same(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Type() == vb.Type() && va.Comparable() && vb.Comparable() && a == b
}
