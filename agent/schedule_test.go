package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
)

// drain acknowledges everything r receives until the returned stop is called.
func drain(t *testing.T, r transport.Receiver) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d, err := r.Receive(ctx)
			if err != nil {
				return
			}
			if err := d.Ack(transport.Ack{Status: transport.StatusOK}); err != nil {
				t.Errorf("ack: %v", err)
			}
		}
	}()
	return func() { cancel(); <-done }
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// counting is a driver that counts its collections and records when each
// started.
type counting struct {
	mu     sync.Mutex
	starts []time.Time
	block  func(ctx context.Context)
}

func (c *counting) Collect(ctx context.Context) ([]meter.Measurement, error) {
	c.mu.Lock()
	c.starts = append(c.starts, time.Now())
	c.mu.Unlock()
	if c.block != nil {
		c.block(ctx)
	}
	return []meter.Measurement{{Name: "n", Kind: meter.Gauge, Value: 1}}, nil
}

func (c *counting) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.starts)
}

// Drivers that share an interval, and one on a multiple of it, are woken
// by one timer: every wake-up of the scheduler finds all of those due.
func TestSchedulerWakesDriversSharingAnIntervalTogether(t *testing.T) {
	// Run stops after a number of wake-ups, not of milliseconds: on a
	// loaded machine (CI, -race) a fixed time held too few turns.
	const turns = 8
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a failure bound
	defer cancel()
	var mu sync.Mutex
	var wakes []int
	testHookWake = func(due int) {
		mu.Lock()
		if wakes = append(wakes, due); len(wakes) == turns {
			cancel()
		}
		mu.Unlock()
	}
	defer func() { testHookWake = nil }()

	s, r := transport.Pipe()
	defer s.Close()
	defer drain(t, r)()
	const every = 100 * time.Millisecond
	ds := []*counting{{}, {}, {}, {}}
	a, err := New(s, WithLogger(quietLog), WithJitter(0), WithStatsInterval(NoStats),
		WithDriver("a", ds[0], Interval(every)), WithDriver("b", ds[1], Interval(every)),
		WithDriver("c", ds[2], Interval(every)), WithDriver("d", ds[3], Interval(2*every)))
	require.NoError(t, err)
	require.NoError(t, a.Run(ctx))
	require.ErrorIs(t, ctx.Err(), context.Canceled, "%d turns within the bound", turns)

	mu.Lock()
	defer mu.Unlock()
	// One wake-up per turn, not one per driver: every wake-up found three
	// or four drivers due, and each driver collected once per wake-up.
	require.GreaterOrEqual(t, len(wakes), turns)
	for i, due := range wakes {
		// Turns 0, 2, 4... have all four due, the others the three on every.
		require.GreaterOrEqual(t, due, 3, "wake-up %d: every driver of the interval was due", i)
	}
	for i, d := range ds[:3] {
		// (The last wake-up may race with the end of Run.)
		require.InDelta(t, len(wakes), d.count(), 1, "driver %d collected at every wake-up", i)
	}
	require.InDelta(t, (len(wakes)+1)/2, ds[3].count(), 1, "the driver on twice the interval, every other wake-up")
	// The three of one turn started together, well within a turn.
	for turn := range ds[0].count() {
		first, last := ds[0].starts[turn], ds[0].starts[turn]
		for _, d := range ds[1:3] {
			first, last = minTime(first, d.starts[turn]), maxTime(last, d.starts[turn])
		}
		require.Less(t, last.Sub(first), every/2, "turn %d", turn)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// A driver slower than its interval skips its turns while it runs, and
// the others keep theirs.
func TestSchedulerSlowDriverSkipsItsTurnsOnly(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	defer drain(t, r)()
	const every = 20 * time.Millisecond
	fast := &counting{}
	slow := &counting{block: func(context.Context) { time.Sleep(5 * every) }} // ignores its deadline
	a, err := New(s, WithLogger(quietLog), WithJitter(0), WithStatsInterval(NoStats),
		WithDriver("fast", fast, Interval(every)), WithDriver("slow", slow, Interval(every)))
	require.NoError(t, err)
	// Run stops after a number of the fast driver's turns, not of
	// milliseconds (a loaded machine stretches them).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a failure bound
	defer cancel()
	const turns = 15
	go func() {
		for fast.count() < turns && ctx.Err() == nil {
			time.Sleep(every / 4)
		}
		cancel()
	}()
	start := time.Now()
	require.NoError(t, a.Run(ctx))
	elapsed := time.Since(start)
	require.GreaterOrEqual(t, fast.count(), turns, "the fast driver kept its turns")
	// Each of the slow driver's calls lasts 5 turns: called again while it
	// runs, it would have as many calls as the fast one.
	require.LessOrEqual(t, slow.count(), int(elapsed/(5*every))+1, "the slow driver is not called again while it runs (%v)", elapsed)
	require.GreaterOrEqual(t, slow.count(), 2)
	require.GreaterOrEqual(t, fast.count(), 2*slow.count(), "the slow driver held the fast one back")
	st := a.Stats()
	require.GreaterOrEqual(t, st.Overruns, uint64(2))
}

// The collection's context ends at its deadline, without a timer made for
// it, and when Run's context ends; Run then returns with every goroutine
// of the schedule gone (TestMain checks for leaks).
func TestSchedulerDeadlineAndStop(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	defer drain(t, r)()
	var deadlineErrs, cancelErrs atomic.Int32
	var sawDeadline atomic.Bool
	waiting := make(chan struct{}, 1)
	timed := &counting{block: func(ctx context.Context) {
		dl, ok := ctx.Deadline()
		sawDeadline.Store(ok && time.Until(dl) <= 30*time.Millisecond)
		<-ctx.Done()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			deadlineErrs.Add(1)
		}
	}}
	forever := &counting{block: func(ctx context.Context) {
		select {
		case waiting <- struct{}{}:
		default:
		}
		<-ctx.Done()
		if errors.Is(ctx.Err(), context.Canceled) {
			cancelErrs.Add(1)
		}
	}}
	a, err := New(s, WithLogger(quietLog), WithJitter(0), WithStatsInterval(NoStats),
		WithDriver("timed", timed, Interval(time.Hour), Timeout(30*time.Millisecond)),
		WithDriver("forever", forever, Interval(time.Hour)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-waiting
	require.Eventually(t, func() bool { return deadlineErrs.Load() == 1 }, 5*time.Second, time.Millisecond,
		"the collection's context ended at its deadline")
	require.True(t, sawDeadline.Load())
	begin := time.Now()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	require.Less(t, time.Since(begin), time.Second)
	require.Equal(t, int32(1), cancelErrs.Load(), "the running collection saw Run's context end")
}

func TestCollectCtx(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	c := &collectCtx{parent: parent, deadline: time.Now().Add(time.Hour)}
	require.Equal(t, "v", c.Value(key{}))
	require.NoError(t, c.Err())
	done := c.Done()
	select {
	case <-done:
		t.Fatal("done before cancel")
	default:
	}
	c.cancel(context.DeadlineExceeded)
	c.cancel(context.Canceled) // the first cause stays
	<-done
	require.ErrorIs(t, c.Err(), context.DeadlineExceeded)
	// A context derived from it ends with it.
	c2 := &collectCtx{parent: parent, deadline: time.Now().Add(time.Hour)}
	child, stop := context.WithCancel(c2)
	defer stop()
	c2.cancel(context.Canceled)
	<-child.Done()
}

// withTimeout behaves as context.WithTimeout: it ends at the deadline, when
// its parent ends, or when cancelled, and what is derived from it ends
// with it, without a goroutine waiting.
func TestWithTimeout(t *testing.T) {
	ctx, cancel := withTimeout(context.Background(), 20*time.Millisecond)
	dl, ok := ctx.Deadline()
	require.True(t, ok)
	require.WithinDuration(t, time.Now().Add(20*time.Millisecond), dl, 10*time.Millisecond)
	child, stopChild := context.WithCancel(ctx)
	defer stopChild()
	var ran atomic.Bool
	afterDone := make(chan struct{})
	context.AfterFunc(ctx, func() { ran.Store(true); close(afterDone) })
	stopped := context.AfterFunc(ctx, func() { t.Error("a stopped AfterFunc ran") })
	require.True(t, stopped())
	<-ctx.Done()
	require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
	<-child.Done()
	<-afterDone
	require.True(t, ran.Load())
	cancel()
	cancel() // twice is fine

	parent, stopParent := context.WithCancel(context.Background())
	ctx, cancel = withTimeout(parent, time.Hour)
	stopParent()
	<-ctx.Done()
	require.ErrorIs(t, ctx.Err(), context.Canceled)
	cancel()

	ctx, cancel = withTimeout(context.Background(), time.Hour)
	cancel()
	<-ctx.Done()
	require.ErrorIs(t, ctx.Err(), context.Canceled)
}
