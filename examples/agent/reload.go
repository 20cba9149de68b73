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

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/agent/agentconfig"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/seal"
)

// reloader applies the config file, read again on SIGHUP with the same
// flags over it, to the running agent: the drivers and stages (see
// agentconfig.Config.Reload); a changed key that needs a restart, or a file
// that does not load, is refused and the running config stays.
type reloader struct {
	file  string
	fs    *flag.FlagSet
	log   *slog.Logger
	a     *agent.Agent
	s     transport.Sender // a *seal.Sender with a key file
	mu    sync.Mutex       // guards cfg and parts
	cfg   *agentconfig.Config
	parts *agentconfig.Parts
}

// reload reads the file again and applies it; it logs what it did.
func (r *reloader) reload(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reloadKey()
	next, err := load(r.file, r.fs)
	if err != nil {
		r.log.Error("SIGHUP: config not reloaded; the running config stays", "file", r.file, "err", err)
		return
	}
	for _, w := range next.Warnings() {
		r.log.Warn(w)
	}
	parts, changes, err := r.cfg.Reload(r.parts, next)
	if err != nil {
		r.log.Error("SIGHUP: config not reloaded; the running config stays", "file", r.file, "err", err)
		return
	}
	if err := r.a.Reconfigure(ctx, next.ReconfigureOptions(parts)...); err != nil {
		closeNew(parts, r.parts)
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
// hold, when the agent did not take it.
func closeNew(parts, old *agentconfig.Parts) {
	fresh := &agentconfig.Parts{}
	for _, d := range parts.Drivers {
		if !slices.ContainsFunc(old.Drivers, func(o agentconfig.Driver) bool { return same(o.Driver, d.Driver) }) {
			fresh.Drivers = append(fresh.Drivers, d)
		}
	}
	if !same(parts.Stage, old.Stage) {
		fresh.Stage = parts.Stage
	}
	fresh.Close()
}

// reloadKey reads the key file again and seals with the tenant's newest
// key from then on (after meterctl key rotate and export).
func (r *reloader) reloadKey() {
	ss, ok := r.s.(*seal.Sender)
	if !ok || r.cfg.KeyFile == "" {
		return
	}
	sl, err := seal.SealerFor(r.cfg.KeyFile, r.cfg.Tenant)
	if err == nil {
		err = ss.SetSealer(sl)
	}
	if err != nil {
		r.log.Error("SIGHUP: key file not reloaded; the key in use stays", "file", r.cfg.KeyFile, "key", ss.KeyID(), "err", err)
		return
	}
	r.log.Info("SIGHUP: key file reloaded", "file", r.cfg.KeyFile, "key", ss.KeyID())
}

// onHUP calls reload on each SIGHUP (systemctl reload) until ctx ends; a
// SIGHUP never kills the agent. The returned func stops it and waits.
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
