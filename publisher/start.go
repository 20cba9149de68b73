package publisher

import (
	"context"
	"errors"
	"fmt"

	"github.com/meterkit/meter/sink"
)

// ErrSinkStart is what Run's error wraps, with the sink's own error, when a
// sink could not start (sink.Starter): the publisher did not receive. A
// program tells "could not start" from a failure in the run with errors.Is.
// Reconfigure's error wraps it too when a sink it would add cannot start.
var ErrSinkStart = errors.New("publisher: a sink could not start")

// startSinks starts, in order, every sink that has something to start
// (sink.Starter, found through wrappers with sink.As), before Run
// receives: a server such as sink/web's then serves before the first
// batch, and one that cannot start (a port in use) fails Run at once,
// named. It holds the reload lock, so that a Reconfigure in hand either
// finished (its sinks are started here) or starts its own afterwards.
func (p *Publisher) startSinks(ctx context.Context) error {
	p.rl.mu.Lock()
	defer p.rl.mu.Unlock()
	for _, g := range p.sinkList() {
		if err := startSink(ctx, g.name, g.s); err != nil {
			if ctx.Err() != nil {
				return nil // Run ends as it does when its ctx ends: nothing failed
			}
			return err
		}
	}
	return nil
}

// startSink starts s if it is a sink.Starter.
func startSink(ctx context.Context, name string, s sink.Sink) error {
	st, ok := sink.As[sink.Starter](s)
	if !ok {
		return nil
	}
	if err := st.Start(ctx); err != nil {
		return fmt.Errorf("%w: sink %q: %w", ErrSinkStart, name, err)
	}
	return nil
}

// startAdded starts, when Run runs (else Run starts them), the sinks of
// sinks whose names are not in use: before Reconfigure changes anything,
// so that one that cannot start fails it. Nothing writes them yet.
func (p *Publisher) startAdded(ctx context.Context, sinks []namedSink, inUse map[string]*guardedSink) error {
	if !p.running.Load() {
		return nil
	}
	for _, ns := range sinks {
		if inUse[ns.name] == nil {
			if err := startSink(ctx, ns.name, ns.s); err != nil {
				return err
			}
		}
	}
	return nil
}

// startReplaced starts, when Run runs, the sink Reconfigure put in g's
// place, under g's write lock so that Start never runs alongside its
// Write. A failure is logged: the sink is in place already.
func (p *Publisher) startReplaced(ctx context.Context, g *guardedSink) {
	if !p.running.Load() {
		return
	}
	g.mu.Lock()
	err := startSink(ctx, g.name, g.s)
	g.mu.Unlock()
	if err != nil {
		p.log.Error("sink replaced in place could not start", "sink", g.name, "err", err)
	}
}
