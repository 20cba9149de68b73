package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/agent/agentconfig"
)

// reloader applies the config file, read again on SIGHUP with the same
// flags over it, to the running agent: the drivers and stages (see
// agentconfig.Reloadable); a changed key that needs a restart, or a file
// that does not load, is refused and the running config stays.
type reloader struct {
	file  string
	fs    *flag.FlagSet
	log   *slog.Logger
	a     *agent.Agent
	mu    sync.Mutex // guards cfg and parts
	cfg   *agentconfig.Config
	parts *agentconfig.Parts
}

// reload reads the file again and applies it; it logs what it did.
func (r *reloader) reload(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
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
