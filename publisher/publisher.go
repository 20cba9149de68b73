package publisher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meterkit/meter/internal/statslog"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/transport"
)

// Publisher receives envelopes from agents, validates their measurements,
// writes them to its sinks and acknowledges each envelope once every sink
// accepted it.
type Publisher struct {
	cfg   config
	recv  transport.Receiver
	log   *slog.Logger
	sinks []*guardedSink

	dd     *dedup
	spool  *spool
	doubts doubtSet

	stageMu sync.Mutex  // serialises the stages: Process is never called concurrently
	stages  stage.Stage // nil without WithStage
	st      *stageState // the stages' state, order and ticks (state.go)

	running   atomic.Bool
	serving   atomic.Bool   // Run's workers receive (Serving)
	ready     readySignal   // closed when serving first becomes true (Ready, ready.go)
	quit      chan struct{} // closed by Close: Run stops as if its ctx ended
	abort     chan struct{} // closed by Close when its ctx ends first: Run stops at once
	done      chan struct{} // closed when Run returns
	closeOnce sync.Once
	closeErr  error
	// delivered is signalled (without blocking: one signal is kept) each
	// time a lane forgets a batch, so that Run's drain waits for the lanes
	// to empty without polling.
	delivered chan struct{}
	c         counters
	rl        reloadState // Reconfigure (reload.go)
}

// New makes a publisher that receives from r and writes to the sinks given
// with WithSink (at least one). The publisher owns r and the sinks: Close
// closes them.
func New(r transport.Receiver, opts ...Option) (*Publisher, error) {
	if r == nil {
		return nil, errors.New("publisher: nil transport.Receiver")
	}
	c := config{workers: DefaultWorkers, writeLimit: DefaultWriteTimeout, drain: DefaultDrainTimeout,
		dedupWindow: DefaultDedupWindow, dedupAge: DefaultDedupAge, backoffMin: DefaultBackoffMin, backoffMax: DefaultBackoffMax,
		statsEvery: DefaultStatsInterval}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	if len(c.sinks) == 0 {
		return nil, errors.New("publisher: no sink: add one with WithSink (sink.Discard to drop everything)")
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	p := &Publisher{cfg: c, recv: r, log: c.logger, dd: newDedup(c.dedupWindow, c.dedupAge), stages: chain(c.stages),
		quit: make(chan struct{}), delivered: make(chan struct{}, 1), abort: make(chan struct{}), done: make(chan struct{})}
	st, err := newStageState(&p.cfg, p.stages)
	if err != nil {
		return nil, err
	}
	p.st = st
	names := make([]string, 0, len(c.sinks))
	for _, s := range c.sinks {
		p.sinks = append(p.sinks, newGuardedSink(s.name, s.s))
		names = append(names, s.name)
	}
	if c.spoolDir != "" {
		sp, err := openSpool(c.spoolDir, c.spool, names, p.dd)
		if err != nil {
			return nil, err
		}
		p.spool = sp
		if err := st.load(sp, p.log); err != nil {
			sp.close()
			return nil, err
		}
		for _, n := range names {
			if b, m := sp.pending(n); b > 0 {
				p.log.Info("spool holds batches from an earlier run; delivering them first", "sink", n, "batches", b, "measurements", m)
			}
		}
		p.reportDetached()
	}
	return p, nil
}

// Run works on envelopes until ctx ends or Close is called, then finishes
// the ones in hand and delivers what the spool lanes hold (within the drain
// timeout, and within Close's ctx) and returns nil. Before it receives, it
// starts the sinks that have something to start (sink.Starter, such as
// sink/web's server) and, when one cannot, returns an error wrapping
// ErrSinkStart that names the sink, without receiving; Close stops those
// started. Otherwise it returns an error only if the receiver fails for
// good. Run may be called once, and not after Close.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("publisher: Run called twice")
	}
	defer close(p.done)
	select {
	case <-p.quit:
		return errors.New("publisher: Run after Close")
	default:
	}
	if err := p.startSinks(ctx); err != nil {
		return err
	}
	ctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	// Work in hand is finished with a context that outlives ctx by the drain timeout.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() {
		time.AfterFunc(p.cfg.drain, cancelWork)
	})
	defer stop()
	// Close stops Run as the end of ctx does, and ends the drain when
	// Close's own ctx ends first.
	var watch sync.WaitGroup
	returned := make(chan struct{})
	defer watch.Wait()
	defer close(returned)
	watch.Go(func() {
		select {
		case <-p.quit:
			stopRun()
		case <-returned:
			return
		}
		select {
		case <-p.abort:
			cancelWork()
		case <-returned:
		}
	})

	var wg, lanes sync.WaitGroup
	laneCtx, stopLanes := context.WithCancel(workCtx)
	defer stopLanes()
	if p.spool != nil {
		p.startLanes(laneCtx, &lanes)
	}
	if p.cfg.statsEvery > 0 {
		wg.Go(func() { p.logStats(ctx) })
	}
	wg.Go(func() { p.tickLoop(ctx) }) // state.go; a no-op while no stage ticks
	errc := make(chan error, p.cfg.workers)
	p.startServing() // Serving and Ready (ready.go)
	for range p.cfg.workers {
		wg.Go(func() {
			w := worker{p: p}
			if err := w.run(ctx, workCtx); err != nil {
				errc <- err
			}
		})
	}
	wg.Wait()
	p.serving.Store(false)
	close(errc)
	// Agents are no longer served; let the lanes drain into the sinks until
	// they are empty or the drain timeout ends. What remains stays spooled.
	if p.spool != nil {
		for p.pending() > 0 {
			select {
			case <-p.delivered:
			case <-workCtx.Done():
			}
			if workCtx.Err() != nil {
				break
			}
		}
		p.endLanes()
		stopLanes()
		lanes.Wait()
		if n := p.Stats().Pending; n > 0 {
			p.log.Info("stopped; undelivered batches stay in the spool for the next start", "measurements", n)
		}
	}
	return <-errc
}

func (p *Publisher) logStats(ctx context.Context) {
	statslog.Every(ctx, p.log, "publisher stats", p.cfg.statsEvery, func() slog.LogValuer { return p.Stats() })
}

// Close stops the publisher and releases what it owns, in order: when Run
// is running, Close makes it stop receiving, finish the envelopes in hand
// and drain the spool lanes, and waits for it to return; then it closes
// the receiver, every sink, and the spool. A sink is never written after
// it was closed. When ctx ends before Run returned, the writes in hand are
// cancelled (a sink must return when its ctx ends) and what was not
// delivered stays spooled, or is resent by its agent. Close is safe to call
// more than once, and concurrently: every call returns the first one's
// result.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		close(p.quit)
		var errs []error
		recvClosed := false
		if p.running.Load() {
			select {
			case <-p.done:
			case <-ctx.Done():
				close(p.abort)
				// Also unblocks a Receive that does not heed its ctx.
				errs = append(errs, p.recv.Close())
				recvClosed = true
				<-p.done
			}
		}
		if !recvClosed {
			errs = append(errs, p.recv.Close())
		}
		p.rl.mu.Lock() // a Reconfigure in hand has made its sinks
		for _, s := range p.sinkList() {
			s.mu.Lock()
			if err := s.s.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("publisher: close sink %q: %w", s.name, err))
			}
			s.closed = true
			s.mu.Unlock()
		}
		if p.spool != nil {
			errs = append(errs, p.spool.close())
		}
		if c, ok := stage.As[io.Closer](p.stages); ok {
			p.stageMu.Lock() // never while Process runs
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("publisher: close stages: %w", err))
			}
			p.stageMu.Unlock()
		}
		p.rl.mu.Unlock()
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

// chain makes one stage of the stages given to WithStage.
func chain(stages []stage.Stage) stage.Stage {
	switch len(stages) {
	case 0:
		return nil
	case 1:
		return stages[0]
	}
	return stage.Chain(stages...)
}
