package agent

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds the collection schedule and the age flusher: what wakes
// the agent when it is idle. An agent on every compute node is paid for
// thousands of times, so an idle one wakes as little as it can:
//
//   - One timer wakes every polled driver that is due: drivers sharing an
//     interval (or whose intervals are multiples of one another) are woken
//     together, on one grid. The grid starts at one random offset per agent
//     (the jitter), so that agents started together do not collect in step,
//     while one agent's drivers do.
//   - Each driver has a worker goroutine made once, which runs its
//     collections: they run concurrently, each with its own deadline, and a
//     driver still collecting when it is due again skips that turn (a slow
//     driver delays only itself).
//   - A collection's deadline is a context of our own (collectCtx) cancelled
//     by a timer each worker makes once and re-arms (deadliner): no timer or
//     goroutine is made per collection. Sends take their deadline the same
//     way (withTimeout), from a pool of deadliners.
//   - The age flusher sleeps until a batch is opened, then wakes once, when
//     that batch is due.

// scheduler runs the polled drivers. Reconfigure adds and removes them
// while it runs.
type scheduler struct {
	a       *Agent
	start   time.Time     // the grid's origin: the agent's one random offset
	changed chan struct{} // a worker was added or removed (buffer 1)
	mu      sync.Mutex
	workers []*worker
}

// worker runs one driver's collections, one at a time.
type worker struct {
	s    schedule
	next time.Time     // when it is due next (the scheduler's, under its mu)
	wake chan struct{} // the scheduler's signal to collect once
	busy atomic.Bool   // a collection is running (set by the scheduler, cleared by the worker)
	dl   *deadliner
}

// schedOffset returns the agent's offset of the first collections: up to
// the jitter's fraction of the shortest interval, at most a second.
func schedOffset(jitter float64, ss []schedule) time.Duration {
	shortest := time.Duration(0)
	for _, s := range ss {
		if shortest == 0 || s.interval < shortest {
			shortest = s.interval
		}
	}
	if shortest == 0 {
		shortest = time.Second
	}
	j := min(time.Duration(jitter*float64(shortest)), time.Second)
	if j <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(j)))
}

// newScheduler makes the scheduler of one Run, its grid offset drawn for
// the polled drivers of ss.
func newScheduler(a *Agent, ss []schedule) *scheduler {
	return &scheduler{a: a, start: time.Now().Add(schedOffset(a.cfg.jitter, ss)), changed: make(chan struct{}, 1)}
}

// add makes s a worker. It collects first at the grid's origin, or at
// once when that has passed (a driver Reconfigure adds), and then on the
// points of the grid.
func (sc *scheduler) add(s schedule) *worker {
	w := &worker{s: s, wake: make(chan struct{}, 1), dl: newDeadliner()}
	sc.mu.Lock()
	w.next = sc.start
	if now := time.Now(); w.next.Before(now) {
		w.next = w.next.Add(now.Sub(w.next) / s.interval * s.interval) // the last point passed: due now
	}
	sc.workers = append(sc.workers, w)
	sc.mu.Unlock()
	signal(sc.changed)
	return w
}

// remove forgets w, once its work returned.
func (sc *scheduler) remove(w *worker) {
	sc.mu.Lock()
	for i, o := range sc.workers {
		if o == w {
			sc.workers = append(sc.workers[:i], sc.workers[i+1:]...)
			break
		}
	}
	sc.mu.Unlock()
	signal(sc.changed)
}

// run wakes the workers that are due, with one timer, until ctx ends.
func (sc *scheduler) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		sc.mu.Lock()
		e, ok := sc.earliest()
		sc.mu.Unlock()
		if ok {
			t.Reset(time.Until(e))
		}
		select {
		case <-ctx.Done():
			return
		case <-sc.changed:
			t.Stop()
			continue
		case <-t.C:
		}
		now := time.Now()
		due := 0
		sc.mu.Lock()
		for _, w := range sc.workers {
			if w.next.After(now) {
				continue
			}
			due++
			if w.busy.CompareAndSwap(false, true) {
				w.wake <- struct{}{} // never blocks: the worker is idle and the buffer empty
			}
			// The next turn on the grid (skipping those missed).
			for !w.next.After(now) {
				w.next = w.next.Add(w.s.interval)
			}
		}
		sc.mu.Unlock()
		if testHookWake != nil {
			testHookWake(due)
		}
	}
}

// testHookWake, set by tests only, is told how many drivers were due at
// each wake-up of the scheduler.
var testHookWake func(due int)

// earliest returns when the next worker is due; false when there is none.
// Called with sc.mu held.
func (sc *scheduler) earliest() (time.Time, bool) {
	if len(sc.workers) == 0 {
		return time.Time{}, false
	}
	e := sc.workers[0].next
	for _, w := range sc.workers[1:] {
		if w.next.Before(e) {
			e = w.next
		}
	}
	return e, true
}

// work runs w's collections when the scheduler says, until ctx ends or
// Reconfigure stops the driver (w.s.stop, after the collection in hand).
func (sc *scheduler) work(ctx context.Context, w *worker) {
	defer w.dl.timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.s.stop:
			return
		case <-w.wake:
		}
		c, done := w.dl.start(ctx, w.s.timeout)
		sc.a.collect(ctx, c, w.s)
		done()
		w.busy.Store(false)
	}
}

// deadliner gives contexts with a deadline, one at a time, cancelled at
// the deadline by one timer made once and re-armed.
type deadliner struct {
	timer *time.Timer
	cur   atomic.Pointer[collectCtx]
}

func newDeadliner() *deadliner {
	d := &deadliner{}
	d.timer = time.AfterFunc(time.Hour, d.expire)
	d.timer.Stop()
	return d
}

// start returns a context that ends timeout from now, or when parent ends,
// and the function that ends it (as context.WithTimeout's cancel does)
// and makes d ready for the next one.
func (d *deadliner) start(parent context.Context, timeout time.Duration) (*collectCtx, func()) {
	c := &collectCtx{parent: parent, deadline: time.Now().Add(timeout)}
	d.cur.Store(c)
	stopParent := func() bool { return false }
	if parent.Done() != nil {
		stopParent = context.AfterFunc(parent, func() { c.cancel(parent.Err()) })
	}
	d.timer.Reset(timeout)
	return c, func() {
		d.timer.Stop()
		stopParent()
		d.cur.Store(nil)
		c.cancel(context.Canceled)
	}
}

// expire cancels the current context once its deadline has passed. A
// timer that fired late, for a context since replaced, finds the new
// one's deadline still ahead and leaves it alone.
func (d *deadliner) expire() {
	if c := d.cur.Load(); c != nil && !time.Now().Before(c.deadline) {
		c.cancel(context.DeadlineExceeded)
	}
}

// deadliners are the senders' deadliners (withTimeout).
var deadliners sync.Pool // of *deadliner

// withTimeout is context.WithTimeout without a timer made per call: the
// agent sends every batch with one.
func withTimeout(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	d, ok := deadliners.Get().(*deadliner)
	if !ok {
		d = newDeadliner()
	}
	c, done := d.start(parent, timeout)
	var once sync.Once
	return c, func() {
		once.Do(func() {
			done()
			deadliners.Put(d)
		})
	}
}

// collectCtx is a context with a deadline (see deadliner): its parent's
// values, and a Done channel made only when asked for. Functions given to
// AfterFunc (as context.AfterFunc and the contexts derived from it do) run
// when it ends, without a goroutine waiting for it.
type collectCtx struct {
	parent   context.Context
	deadline time.Time
	mu       sync.Mutex
	done     chan struct{}
	err      error
	after    []*afterFunc
}

type afterFunc struct {
	f       func()
	stopped bool
}

// AfterFunc runs f in its own goroutine once c ends, unless stop is called
// first (context.AfterFunc's contract).
func (c *collectCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.after = append(c.after, a)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.stopped {
			return false
		}
		a.stopped = true
		return true
	}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *collectCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *collectCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedChan
		}
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *collectCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *collectCtx) Value(key any) any { return c.parent.Value(key) }

func (c *collectCtx) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	for _, a := range c.after {
		if !a.stopped {
			a.stopped = true
			go a.f()
		}
	}
	c.after = nil
}

// ageFlusher sends a partial batch once its oldest measurement is
// batchAge old. It sleeps until a batch is opened (a.aged), and returns
// when ctx ends.
func (a *Agent) ageFlusher(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.aged:
		}
		for {
			a.mu.Lock()
			open, since := len(a.cur) > 0, a.curSince
			a.mu.Unlock()
			if !open {
				break
			}
			if wait := a.cfg.batchAge - time.Since(since); wait > 0 {
				t.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				continue
			}
			a.mu.Lock()
			if len(a.cur) > 0 && time.Since(a.curSince) >= a.cfg.batchAge {
				a.flushLocked()
			}
			a.mu.Unlock()
		}
	}
}
