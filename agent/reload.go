package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/internal/stagestate"
	"github.com/meterkit/meter/stage"
)

// reloadState is what Reconfigure changes while Run runs.
type reloadState struct {
	mu  sync.Mutex    // serialises Reconfigure; guards run and cfg.drivers
	run *driverRunner // Run's driver goroutines; nil when none run
	ran bool          // Run started its drivers: later changes go to run, or fail
	// stages are the stages in use, for Stats (stagestats.go).
	stages atomic.Pointer[stageBox]
}

// driverRunner starts and stops the driver goroutines of one Run.
type driverRunner struct {
	ctx     context.Context
	wg      *sync.WaitGroup
	sched   *scheduler // wakes the polled drivers (schedule.go)
	running map[string]*runningDriver
}

// runningDriver is one driver's goroutine.
type runningDriver struct {
	stop   chan struct{}      // closed to stop a polled driver after its collection in hand
	cancel context.CancelFunc // stops a push source
	done   chan struct{}      // closed when the goroutine ended (and closed the driver, if asked)
	close  atomic.Bool        // close the driver once the goroutine ends
}

// startDrivers starts a goroutine for each driver, and records how to start
// and stop more while Run runs.
func (a *Agent) startDrivers(ctx context.Context, wg *sync.WaitGroup) {
	a.rl.mu.Lock()
	defer a.rl.mu.Unlock()
	a.rl.ran = true
	sc := newScheduler(a, a.cfg.drivers)
	a.rl.run = &driverRunner{ctx: ctx, wg: wg, sched: sc, running: map[string]*runningDriver{}}
	for _, s := range a.cfg.drivers {
		a.startDriverLocked(s, nil)
	}
	// After every driver is on the grid, so that the first turn wakes them
	// together.
	wg.Go(func() { sc.run(ctx) })
}

// stopDrivers forgets the driver goroutines: Run waits for them, which end
// with its ctx.
func (a *Agent) stopDrivers() {
	a.rl.mu.Lock()
	a.rl.run = nil
	a.rl.mu.Unlock()
}

// startDriverLocked starts s's goroutine; it runs the driver once after
// is closed (nil: at once).
func (a *Agent) startDriverLocked(s schedule, after <-chan struct{}) {
	r := a.rl.run
	if r == nil {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	rd := &runningDriver{stop: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	s.stop = rd.stop
	_, push := s.d.(driver.Pusher)
	var w *worker
	if !push && after == nil {
		w = r.sched.add(s) // on the grid now (at Run's start, with the others)
	}
	r.wg.Go(func() {
		defer close(rd.done)
		defer cancel()
		if after != nil {
			select {
			case <-after: // the same driver under its former schedule ended
			case <-ctx.Done():
				return
			}
		}
		if p, ok := s.d.(driver.Pusher); ok {
			a.runPush(ctx, s, p)
		} else {
			if w == nil {
				w = r.sched.add(s)
			}
			r.sched.work(ctx, w)
			r.sched.remove(w)
		}
		if rd.close.Load() {
			a.closeDriver(s)
		}
	})
	r.running[s.name] = rd
}

// Reconfigure gives an agent, running or not, a new set of drivers and
// stages, keeping its sender, queue or spool, sequence numbers and
// counters. opts are options of New, of which only WithDriver,
// WithNamedDriver, WithStage and WithStages may be given (any other is an
// error, and nothing changes); they say the whole new set, as they would to
// New:
//
//   - A driver given under the name of one running, with the same
//     driver.Driver value and schedule (Interval, Timeout), keeps running
//     untouched, with its state and its place in its schedule.
//   - The same value with another schedule goes on under the new schedule:
//     its goroutine is stopped after the collection in hand and started
//     again; the driver itself is kept.
//   - Another value under that name replaces it: the old one is stopped after
//     the collection in hand (a push source, driver.Pusher, when its ctx
//     ends), closed if it is an io.Closer, and the new one started.
//   - A running driver not given is stopped and closed the same way.
//   - A driver of a new name is started.
//   - The stages given replace those in use unless they are the very same
//     value; the state of the stages in use (stage.Checkpointer) is
//     restored into the new ones (stage.Restorer) first, under each stage's
//     key as a stage.Chain keys it, so that a chain keeps the state of the
//     stages it keeps; then the old ones are closed. No WithStage means no
//     stages. No collection is staged half by the old and half by the new.
//
// What a stopped driver collected is added before it stops, and batches
// already cut keep going to the publisher. Reconfigure waits for the
// stopped drivers to finish their collections in hand, or for ctx to end
// (then they are closed when they finish); a failure to close one is
// logged. It fails, changing nothing, when the options are wrong or the
// new stages cannot take the old state; after Run returned or Close was
// called, it fails with ErrStopped. On success the agent owns what opts
// give; on failure they stay the caller's. It is safe to call concurrently
// with everything else.
func (a *Agent) Reconfigure(ctx context.Context, opts ...Option) error {
	var c config
	for _, o := range opts {
		if err := o(&c); err != nil {
			return err
		}
	}
	rest := c
	rest.drivers, rest.stages = nil, nil
	if !reflect.ValueOf(rest).IsZero() {
		return errors.New("agent: Reconfigure takes only WithDriver, WithNamedDriver, WithStage and WithStages: the other settings need a new agent")
	}
	a.rl.mu.Lock()
	defer a.rl.mu.Unlock()
	select {
	case <-a.stop:
		return ErrStopped
	default:
	}
	if a.rl.ran && a.rl.run == nil {
		return ErrStopped
	}

	newStages := chain(c.stages)
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return ErrStopped
	}
	oldStages := a.stages
	if err := stagestate.Carry(oldStages, newStages); err != nil {
		a.mu.Unlock()
		return fmt.Errorf("agent: Reconfigure: %w", err)
	}
	a.stages = newStages
	a.rl.stages.Store(&stageBox{newStages})
	if !stagestate.Same(oldStages, newStages) {
		a.restateLocked(c.stages) // state.go
	}
	a.mu.Unlock()
	var errs []error
	var stopped []*runningDriver
	if oldStages != nil && !stagestate.Same(oldStages, newStages) {
		if cl, ok := stage.As[io.Closer](oldStages); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, fmt.Errorf("agent: close replaced stages: %w", err))
			}
		}
	}
	if !stagestate.Same(oldStages, newStages) {
		a.log.Info("stages replaced")
	}

	old := map[string]schedule{}
	for _, s := range a.cfg.drivers {
		old[s.name] = s
	}
	type starting struct {
		s     schedule
		after <-chan struct{}
	}
	var start []starting
	for _, s := range c.drivers {
		o, ok := old[s.name]
		delete(old, s.name)
		switch {
		case !ok:
			start = append(start, starting{s: s})
			a.log.Info("driver added", "driver", s.name, "interval", s.interval)
		case sameDriver(o.d, s.d) && o.interval == s.interval && o.timeout == s.timeout:
			// kept running
		case sameDriver(o.d, s.d):
			rd := a.stopDriverLocked(o, false)
			stopped = append(stopped, rd)
			st := starting{s: s}
			if rd != nil {
				st.after = rd.done
			}
			start = append(start, st)
			a.log.Info("driver schedule changed; the driver goes on under it", "driver", s.name,
				"interval", s.interval, "was", o.interval, "timeout", s.timeout)
		default:
			stopped = append(stopped, a.stopDriverLocked(o, true))
			start = append(start, starting{s: s})
			a.log.Info("driver replaced", "driver", s.name, "interval", s.interval)
		}
	}
	for _, o := range a.cfg.drivers {
		if _, gone := old[o.name]; gone {
			stopped = append(stopped, a.stopDriverLocked(o, true))
			a.log.Info("driver removed", "driver", o.name)
		}
	}
	// The stopped drivers finish their collections in hand; a driver given a
	// new schedule starts under it only then, so it never runs twice at once.
	for _, rd := range stopped {
		if rd == nil {
			continue
		}
		select {
		case <-rd.done:
		case <-ctx.Done():
			a.log.Warn("Reconfigure: a stopped driver is still collecting; it ends (and, if removed or replaced, is closed) when its collection does",
				"err", ctx.Err())
		}
	}
	a.cfg.drivers = c.drivers
	for _, st := range start {
		a.startDriverLocked(st.s, st.after)
	}
	return errors.Join(errs...)
}

// stopDriverLocked stops s's goroutine after the collection in hand (a
// push source: by ending its ctx), and closes the driver then if closeIt.
// It returns the goroutine to wait for; nil when none runs (the driver is
// closed at once).
func (a *Agent) stopDriverLocked(s schedule, closeIt bool) *runningDriver {
	r := a.rl.run
	var rd *runningDriver
	if r != nil {
		rd = r.running[s.name]
		delete(r.running, s.name)
	}
	if rd == nil {
		if closeIt {
			a.closeDriver(s)
		}
		return nil
	}
	rd.close.Store(closeIt)
	close(rd.stop)
	if _, ok := s.d.(driver.Pusher); ok {
		rd.cancel()
	}
	return rd
}

// closeDriver closes a driver that is an io.Closer, logging a failure.
func (a *Agent) closeDriver(s schedule) {
	if c, ok := s.d.(io.Closer); ok {
		if err := c.Close(); err != nil {
			a.log.Warn("could not close a driver that was replaced or removed", "driver", s.name, "err", err)
		}
	}
}

// sameDriver reports whether a and b are the same driver value.
func sameDriver(a, b driver.Driver) bool { return stagestate.Same(a, b) }
