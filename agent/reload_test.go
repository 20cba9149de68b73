package agent_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/transport"
)

// numbered measures how many times it was collected, under its own name;
// it counts its Close calls.
type numbered struct {
	name   string
	n      atomic.Int64
	closed atomic.Int32
}

func (d *numbered) Collect(context.Context) ([]meter.Measurement, error) {
	return []meter.Measurement{{Name: d.name, Kind: meter.Gauge, Value: float64(d.n.Add(1))}}, nil
}
func (d *numbered) Close() error { d.closed.Add(1); return nil }

// valuesOf returns the values of the measurements named name, in order.
func valuesOf(c *collector, name string) []float64 {
	var out []float64
	for _, m := range c.measurements() {
		if m.Name == name {
			out = append(out, m.Value)
		}
	}
	return out
}

func consecutive(t *testing.T, vs []float64, what string) {
	t.Helper()
	for i, v := range vs {
		require.Equal(t, float64(i+1), v, "%s: collection %d", what, i+1)
	}
}

func runAgent(t *testing.T, opts ...agent.Option) (*agent.Agent, *collector, func()) {
	s, r := transport.Pipe()
	c := &collector{}
	stopRecv := c.run(t, r)
	a, err := agent.New(s, append([]agent.Option{agent.WithLogger(quiet), agent.WithHost("h"), agent.WithJitter(0),
		agent.WithBatch(1, time.Millisecond), agent.WithStatsInterval(agent.NoStats)}, opts...)...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return a, c, func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, a.Close(context.Background()))
		stopRecv()
	}
}

func TestReconfigureKeepsUnchangedDriversRestartsChangedAndClosesRemoved(t *testing.T) {
	kept := &numbered{name: "kept"}
	slower := &numbered{name: "slower"}
	removed := &numbered{name: "removed"}
	replaced := &numbered{name: "replaced"}
	a, c, stop := runAgent(t,
		agent.WithDriver("kept", kept, agent.Interval(5*time.Millisecond)),
		agent.WithDriver("slower", slower, agent.Interval(5*time.Millisecond)),
		agent.WithDriver("removed", removed, agent.Interval(5*time.Millisecond)),
		agent.WithDriver("replaced", replaced, agent.Interval(5*time.Millisecond)))
	require.Eventually(t, func() bool { return c.count("removed") >= 3 && c.count("replaced") >= 3 && c.count("slower") >= 3 },
		5*time.Second, time.Millisecond)

	replacement := &numbered{name: "replacement"}
	added := &numbered{name: "added"}
	require.NoError(t, a.Reconfigure(context.Background(),
		agent.WithDriver("kept", kept, agent.Interval(5*time.Millisecond)),
		agent.WithDriver("slower", slower, agent.Interval(20*time.Millisecond)),
		agent.WithDriver("replaced", replacement, agent.Interval(5*time.Millisecond)),
		agent.WithDriver("added", added, agent.Interval(5*time.Millisecond))))
	require.Equal(t, int32(1), removed.closed.Load(), "a removed driver is closed")
	require.Equal(t, int32(1), replaced.closed.Load(), "a replaced driver is closed")
	require.Zero(t, kept.closed.Load(), "an unchanged driver keeps running")
	require.Zero(t, slower.closed.Load(), "a driver whose schedule changed is kept")
	removedAt, replacedAt, keptAt := removed.n.Load(), replaced.n.Load(), kept.n.Load()

	require.Eventually(t, func() bool { return c.count("added") >= 3 && c.count("replacement") >= 3 }, 5*time.Second, time.Millisecond)
	require.Equal(t, removedAt, removed.n.Load(), "a removed driver is not collected any more")
	require.Equal(t, replacedAt, replaced.n.Load(), "nor a replaced one")
	require.Greater(t, kept.n.Load(), keptAt)
	stop()

	// Every collection of each driver arrived once, in order: the unchanged
	// one counts on from where it was, with its state (its own count).
	consecutive(t, valuesOf(c, "kept"), "kept")
	require.Len(t, valuesOf(c, "kept"), int(kept.n.Load()))
	consecutive(t, valuesOf(c, "slower"), "slower")
	require.Len(t, valuesOf(c, "slower"), int(slower.n.Load()))
	consecutive(t, valuesOf(c, "removed"), "removed")
	require.Len(t, valuesOf(c, "removed"), int(removedAt), "the collection in hand when it was removed arrived")
	consecutive(t, valuesOf(c, "added"), "added")
	require.Zero(t, kept.closed.Load())
}

func TestReconfigureBeforeRun(t *testing.T) {
	first, second := &numbered{name: "first"}, &numbered{name: "second"}
	s, r := transport.Pipe()
	c := &collector{}
	stopRecv := c.run(t, r)
	defer stopRecv()
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithHost("h"), agent.WithBatch(1, time.Millisecond),
		agent.WithDriver("first", first, agent.Interval(5*time.Millisecond)))
	require.NoError(t, err)
	require.NoError(t, a.Reconfigure(context.Background(), agent.WithDriver("second", second, agent.Interval(5*time.Millisecond))))
	require.Equal(t, int32(1), first.closed.Load())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	require.Eventually(t, func() bool { return c.count("second") >= 2 }, 5*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.Zero(t, c.count("first"))
	require.NoError(t, a.Close(context.Background()))
	require.ErrorIs(t, a.Reconfigure(context.Background()), agent.ErrStopped)
}

func TestReconfigureRefusesWhatNeedsANewAgent(t *testing.T) {
	d := &numbered{name: "d"}
	a, _, stop := runAgent(t, agent.WithDriver("d", d))
	defer stop()
	require.ErrorContains(t, a.Reconfigure(context.Background(), agent.WithDriver("d", d), agent.WithTenant("t2")), "only WithDriver")
	require.ErrorContains(t, a.Reconfigure(context.Background(), agent.WithDriver("d", d), agent.WithDriver("d", d)), "twice")
	require.Zero(t, d.closed.Load(), "a refused Reconfigure changes nothing")
}

// counting is a stateful stage: it gives each measurement the count of
// measurements it has seen.
type counting struct{ n int }

func (c *counting) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	for _, m := range in {
		c.n++
		m.Value = float64(c.n)
		out = append(out, m)
	}
	return out, nil
}
func (c *counting) Checkpoint() ([]byte, error) { return json.Marshal(c.n) }
func (c *counting) Restore(b []byte) error      { return json.Unmarshal(b, &c.n) }

func TestReconfigureStagesKeepTheStateOfTheStagesKept(t *testing.T) {
	a, c, stop := runAgent(t, agent.WithStage(stage.Chain(stage.Named("count", &counting{}))))
	add := func(n int) {
		for range n {
			require.NoError(t, a.Add(meter.Measurement{Name: "m", Kind: meter.Gauge, Value: -1}))
		}
	}
	add(3)
	require.NoError(t, a.Reconfigure(context.Background(),
		agent.WithStage(stage.Chain(stage.Named("new", &counting{}), stage.Named("count", &counting{})))))
	add(2)
	stop()
	require.Equal(t, []float64{1, 2, 3, 4, 5}, valuesOf(c, "m"), "the stage kept under its name counts on")
}

// sliceDriver is a driver of a type == cannot compare.
type sliceDriver struct{ names []string }

func (d sliceDriver) Collect(context.Context) ([]meter.Measurement, error) { return nil, nil }

func TestReconfigureTakesDriversThatCannotBeCompared(t *testing.T) {
	a, _, stop := runAgent(t, agent.WithDriver("s", sliceDriver{names: []string{"x"}}))
	defer stop()
	require.NotPanics(t, func() {
		require.NoError(t, a.Reconfigure(context.Background(), agent.WithDriver("s", sliceDriver{names: []string{"x"}})))
	}, "replaced, since it cannot be told to be the same")
}

// blocking collects once it is released; it counts its Close calls.
type blocking struct {
	started, release chan struct{}
	closed           atomic.Int32
}

func (d *blocking) Collect(context.Context) ([]meter.Measurement, error) {
	select {
	case d.started <- struct{}{}:
	default:
	}
	<-d.release
	return []meter.Measurement{{Name: "slow", Kind: meter.Gauge, Value: 1}}, nil
}
func (d *blocking) Close() error { d.closed.Add(1); return nil }

// A removed driver in the middle of a long collection: Reconfigure waits
// for it only until its ctx ends; the driver finishes its collection, which
// is delivered, and is closed then.
func TestReconfigureWaitsForACollectionInHandUntilItsCtxEnds(t *testing.T) {
	slow := &blocking{started: make(chan struct{}, 1), release: make(chan struct{})}
	a, c, stop := runAgent(t, agent.WithDriver("slow", slow, agent.Interval(time.Hour)))
	defer stop()
	<-slow.started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	begun := time.Now()
	require.NoError(t, a.Reconfigure(ctx))
	require.Less(t, time.Since(begun), 5*time.Second)
	require.Zero(t, slow.closed.Load(), "not closed while it collects")
	close(slow.release)
	require.Eventually(t, func() bool { return slow.closed.Load() == 1 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return c.count("slow") == 1 }, 5*time.Second, time.Millisecond,
		"the collection in hand is delivered")
}
