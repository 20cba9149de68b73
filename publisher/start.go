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

// startFresh starts the sinks a Reconfigure added or put in place, when
// Run runs (else Run starts them), each under its write lock so that Start
// never runs alongside its Write.
func (p *Publisher) startFresh(ctx context.Context, fresh []*guardedSink) error {
	if !p.running.Load() {
		return nil
	}
	var errs []error
	for _, g := range fresh {
		g.mu.Lock()
		errs = append(errs, startSink(ctx, g.name, g.s))
		g.mu.Unlock()
	}
	return errors.Join(errs...)
}
