package publisher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sync"

	ispool "github.com/meterkit/meter/internal/spool"
	"github.com/meterkit/meter/internal/stagestate"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/stage"
)

// reloadState is what Reconfigure changes while Run runs.
type reloadState struct {
	mu      sync.Mutex   // serialises Reconfigure; guards lanes
	sinksMu sync.RWMutex // guards Publisher.sinks, which is replaced, never changed in place
	lanes   *laneRunner  // Run's lane goroutines; nil when none run
}

// laneRunner starts and stops the lanes' goroutines of one Run.
type laneRunner struct {
	ctx   context.Context
	wg    *sync.WaitGroup
	lanes map[string]laneGoroutine // per sink
}

type laneGoroutine struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// sinkList returns the sinks in use.
func (p *Publisher) sinkList() []*guardedSink {
	p.rl.sinksMu.RLock()
	defer p.rl.sinksMu.RUnlock()
	return p.sinks
}

// startLanes starts a goroutine delivering each sink's lane, and records
// how to start and stop more while Run runs.
func (p *Publisher) startLanes(ctx context.Context, wg *sync.WaitGroup) {
	p.rl.mu.Lock()
	defer p.rl.mu.Unlock()
	p.rl.lanes = &laneRunner{ctx: ctx, wg: wg, lanes: map[string]laneGoroutine{}}
	for _, s := range p.sinkList() {
		p.startLaneLocked(s)
	}
}

// endLanes forgets the lane goroutines: Run cancels and waits for them.
func (p *Publisher) endLanes() {
	p.rl.mu.Lock()
	p.rl.lanes = nil
	p.rl.mu.Unlock()
}

func (p *Publisher) startLaneLocked(s *guardedSink) {
	r := p.rl.lanes
	if r == nil || p.spool == nil {
		return
	}
	l := p.spool.sp.Lane(s.name)
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	r.wg.Go(func() {
		defer close(done)
		p.runLane(ctx, s, l)
	})
	r.lanes[s.name] = laneGoroutine{cancel: cancel, done: done}
}

// reportDetached logs the spool lanes no sink delivers: kept, and
// delivered if a sink of that name comes back.
func (p *Publisher) reportDetached() {
	if p.spool == nil {
		return
	}
	for _, l := range p.spool.sp.Lanes() {
		if !l.Detached() {
			continue
		}
		b, m := l.Pending()
		p.log.Warn("the spool holds a lane of a sink no longer configured; it is kept, and delivered if a sink of that name is configured again",
			"sink", l.Name(), "batches", b, "measurements", m)
	}
}

// Reconfigure gives a publisher, running or not, a new set of sinks and
// stages, keeping its receiver, spool, de-duplication window and counters.
// opts are options of New, of which only WithSink, WithStage and WithStages
// may be given (any other is an error, and nothing changes); they say the
// whole new set, as they would to New:
//
//   - A sink given under the name of one in use, with the same sink.Sink
//     value, keeps running untouched.
//   - Under that name with another value, it replaces the one in use in
//     place, after the write in hand; the old one is closed, and the name's
//     spool lane and figures (SinkStats) go on.
//   - A sink in use that is not given is closed after the write in hand.
//     With a spool, its lane is kept, detached: it takes no new batches,
//     SinkStats reports it (Detached), and it is delivered again if a sink
//     of that name is given later, by Reconfigure or at the next start.
//   - A sink of a new name is added; with a spool, its lane gets the batches
//     spooled from then on (and those of a detached lane of that name).
//   - The stages given replace those in use unless they are the very same
//     value; the state of the stages in use (stage.Checkpointer) is
//     restored into the new ones (stage.Restorer) first, under each stage's
//     key as a stage.Chain keys it, so that a chain keeps the state of the
//     stages it keeps; then the old ones are closed. No WithStage means no
//     stages.
//
// While Run runs, a sink that has something to start (sink.Starter) is
// started: one of a new name before anything changes, one that replaces
// another after that one was closed (so that it may take its address;
// when it cannot start, it is logged and stays, and sink/web's starts
// again on its next write).
//
// A batch in hand goes to the sinks it was given to. Reconfigure fails,
// changing nothing, when the options are wrong, a new lane cannot be made
// in the spool, a sink of a new name cannot start (the error wraps
// ErrSinkStart), or the new stages cannot take the old state; and after
// Close. It is safe to call concurrently with everything else.
func (p *Publisher) Reconfigure(ctx context.Context, opts ...Option) error {
	var c config
	for _, o := range opts {
		if err := o(&c); err != nil {
			return err
		}
	}
	rest := c
	rest.sinks, rest.stages = nil, nil
	if !reflect.ValueOf(rest).IsZero() {
		return errors.New("publisher: Reconfigure takes only WithSink, WithStage and WithStages: the other settings need a new publisher")
	}
	if len(c.sinks) == 0 {
		return errors.New("publisher: Reconfigure: no sink: add one with WithSink (sink.Discard to drop everything)")
	}
	p.rl.mu.Lock()
	defer p.rl.mu.Unlock()
	select {
	case <-p.quit:
		return errors.New("publisher: Reconfigure after Close")
	default:
	}
	old := p.sinkList()
	byName := map[string]*guardedSink{}
	for _, s := range old {
		byName[s.name] = s
	}
	// What can fail comes first: the lanes of new sinks, the stages' state.
	var added []string
	if p.spool != nil {
		for _, ns := range c.sinks {
			if byName[ns.name] == nil {
				if _, err := p.spool.sp.Attach(ispool.LaneSpec{Name: ns.name, Bucket: []string{bucketLanes, ns.name}}); err != nil {
					for _, n := range added {
						p.spool.sp.Detach(n)
					}
					return fmt.Errorf("publisher: Reconfigure: %w", err)
				}
				added = append(added, ns.name)
			}
		}
	}
	if err := p.startAdded(ctx, c.sinks, byName); err != nil {
		for _, n := range added {
			p.spool.sp.Detach(n)
		}
		return err
	}
	newStages := chain(c.stages)
	nc := p.cfg
	nc.stages = c.stages
	if _, err := newStageState(&nc, newStages); err != nil { // a stateful stage needs the spool
		for _, n := range added {
			p.spool.sp.Detach(n)
		}
		return fmt.Errorf("publisher: Reconfigure: %w", err)
	}
	p.stageMu.Lock()
	oldStages := p.stages
	err := stagestate.Carry(oldStages, newStages)
	if err == nil {
		err = p.st.replace(&nc, newStages) // state.go
	}
	if err != nil {
		p.stageMu.Unlock()
		for _, n := range added {
			p.spool.sp.Detach(n)
		}
		return fmt.Errorf("publisher: Reconfigure: %w", err)
	}
	p.stages = newStages
	p.stageMu.Unlock()

	var errs []error
	if oldStages != nil && !stagestate.Same(oldStages, newStages) {
		if cl, ok := stage.As[io.Closer](oldStages); ok {
			errs = append(errs, cl.Close())
		}
		p.log.Info("stages replaced")
	}
	next := make([]*guardedSink, 0, len(c.sinks))
	var start []*guardedSink
	for _, ns := range c.sinks {
		g := byName[ns.name]
		switch {
		case g == nil:
			g = newGuardedSink(ns.name, ns.s)
			start = append(start, g)
			p.log.Info("sink added", "sink", ns.name, "lane", slices.Contains(added, ns.name))
		case g.sinkIs(ns.s):
		default:
			if err := g.swap(ctx, ns.s); err != nil {
				errs = append(errs, fmt.Errorf("publisher: close replaced sink %q: %w", ns.name, err))
			}
			p.startReplaced(ctx, g)
			p.log.Info("sink replaced in place; its lane and figures go on", "sink", ns.name)
		}
		delete(byName, ns.name)
		next = append(next, g)
	}
	p.rl.sinksMu.Lock()
	p.sinks = next
	p.rl.sinksMu.Unlock()
	for _, g := range old {
		if byName[g.name] == nil {
			continue
		}
		if p.spool != nil {
			p.spool.sp.Detach(g.name)
		}
		if err := p.retire(ctx, g); err != nil {
			errs = append(errs, err)
		}
		if p.spool != nil {
			b, m := p.spool.pending(g.name)
			p.log.Info("sink removed; its lane is kept and delivered if the sink comes back", "sink", g.name,
				"batches", b, "measurements", m)
		} else {
			p.log.Info("sink removed", "sink", g.name)
		}
	}
	for _, g := range start {
		p.startLaneLocked(g)
	}
	return errors.Join(errs...)
}

// retire closes a removed sink after its write in hand and stops its
// lane's goroutine.
func (p *Publisher) retire(ctx context.Context, g *guardedSink) error {
	var lane laneGoroutine
	if r := p.rl.lanes; r != nil {
		lane = r.lanes[g.name]
		delete(r.lanes, g.name)
	}
	g.mu.Lock() // after the write in hand
	if lane.cancel != nil {
		lane.cancel() // before closed is set: the lane sees its ctx ended, not a failed write
	}
	g.closed = true
	err := g.s.Close(ctx)
	g.mu.Unlock()
	if lane.done != nil {
		<-lane.done
	}
	if err != nil {
		return fmt.Errorf("publisher: close removed sink %q: %w", g.name, err)
	}
	return nil
}

// sinkIs reports whether s is the sink in use. Only Reconfigure changes
// g.s, holding p.rl.mu as the caller does: no lock of g is needed.
func (g *guardedSink) sinkIs(s sink.Sink) bool { return stagestate.Same(g.s, s) }

// swap puts s in the place of the sink in use, after the write in hand,
// and closes the old one.
func (g *guardedSink) swap(ctx context.Context, s sink.Sink) error {
	n := newGuardedSink(g.name, s)
	g.mu.Lock()
	old := g.s
	g.s, g.named, g.receipts, g.flusher = s, n.named, n.receipts, n.flusher
	g.mu.Unlock()
	return old.Close(ctx)
}

// appendDetached appends the figures of the spool's detached lanes.
func (p *Publisher) appendDetached(out []SinkStats) []SinkStats {
	if p.spool == nil {
		return out
	}
	for _, l := range p.spool.sp.Lanes() {
		if !l.Detached() {
			continue
		}
		b, m := l.Pending()
		out = append(out, SinkStats{Name: l.Name(), Lane: true, Detached: true,
			Pending: uint64(m), PendingBatches: uint64(b)})
	}
	return out
}
