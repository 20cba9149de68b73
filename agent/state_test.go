package agent_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/rate"
	"github.com/meterkit/meter/transport"
)

// nameCollector acknowledges every envelope a real receiver hands over and
// keeps the measurements named name.
type nameCollector struct {
	mu  sync.Mutex
	got []meter.Measurement
}

func (c *nameCollector) run(r transport.Receiver, name string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d, err := r.Receive(ctx)
			if err != nil {
				return
			}
			c.mu.Lock()
			for _, m := range d.Envelope.Measurements {
				if m.Name == name {
					c.got = append(c.got, m)
				}
			}
			c.mu.Unlock()
			_ = d.Ack(transport.Ack{Status: transport.StatusOK})
		}
	}()
	return func() { cancel(); <-done }
}

func (c *nameCollector) values() []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var v []float64
	for _, m := range c.got {
		v = append(v, m.Value)
	}
	return v
}

func rateStage(t *testing.T) stage.Stage {
	t.Helper()
	r, err := rate.New(rate.Config{Meters: stage.MustCompileMeters("c"), As: "c.rate", DropInput: true})
	require.NoError(t, err)
	return stage.Named("rate", r)
}

func cumulative(v float64, at time.Time) meter.Measurement {
	return meter.Measurement{Name: "c", Kind: meter.Cumulative, Unit: "B", Value: v, Time: at}
}

// The rate stage's state goes into the spool with the batch holding its
// output and comes back at the next start; a collection whose output never
// reached the spool (the agent stopped before flushing it, as a crash
// does) takes its state along: the next start rates against the last point
// that reached the spool, over real mangos sockets.
func TestStageStateRestoredAfterRestart(t *testing.T) {
	r := listenTCP(t, "tcp://127.0.0.1:0")
	defer r.Close()
	var col nameCollector
	stop := col.run(r, "c.rate")
	defer stop()
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)

	newAgent := func() *agent.Agent {
		a, err := agent.New(dialTCP(t, r.Addr()), agent.WithLogger(quiet), agent.WithHost("h"), agent.WithID("state"),
			agent.WithSpool(dir, agent.SpoolSync(agent.SyncNever)), agent.WithBatch(1000, time.Hour), agent.WithStage(rateStage(t)))
		require.NoError(t, err)
		return a
	}

	// First run: two points, one rate (10 B over 10 s), delivered.
	a := newAgent()
	require.NoError(t, a.Add(cumulative(100, t0)))
	require.NoError(t, a.Add(cumulative(110, t0.Add(10*time.Second))))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, a.Run(ctx)) // flushes, delivers, stops
	require.NoError(t, a.Close(context.Background()))
	require.Equal(t, []float64{1}, col.values())

	// Second run: a point staged, its output never stored (no Run: Close
	// drops the open batch, as a crash would): its state is not kept.
	a = newAgent()
	require.NoError(t, a.Add(cumulative(150, t0.Add(20*time.Second))))
	require.NoError(t, a.Close(context.Background()))

	// Third run: rates against 110 at t0+10s, the last point in the spool.
	a = newAgent()
	require.NoError(t, a.Add(cumulative(170, t0.Add(30*time.Second))))
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	require.NoError(t, a.Run(ctx))
	require.NoError(t, a.Close(context.Background()))
	require.Equal(t, []float64{1, 3}, col.values(), "(170-110)/20 s, not (170-150)/10 s")
}

// A collection that stages to nothing (the first point of a series) still
// commits the state: the next start rates against it.
func TestStageStateOfEmptyCollectionCommitted(t *testing.T) {
	r := listenTCP(t, "tcp://127.0.0.1:0")
	defer r.Close()
	var col nameCollector
	stop := col.run(r, "c.rate")
	defer stop()
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	newAgent := func() *agent.Agent {
		a, err := agent.New(dialTCP(t, r.Addr()), agent.WithLogger(quiet), agent.WithHost("h"), agent.WithID("state"),
			agent.WithSpool(dir, agent.SpoolSync(agent.SyncNever)), agent.WithStage(rateStage(t)))
		require.NoError(t, err)
		return a
	}
	a := newAgent()
	require.NoError(t, a.Add(cumulative(100, t0))) // no output: the first point
	require.NoError(t, a.Close(context.Background()))

	a = newAgent()
	require.NoError(t, a.Add(cumulative(140, t0.Add(20*time.Second))))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, a.Run(ctx))
	require.NoError(t, a.Close(context.Background()))
	require.Equal(t, []float64{2}, col.values())
}

// Without a spool the stages' state lives in memory, and the agent says so
// once, at start; with one it says nothing of the kind.
func TestStageStateInMemoryLoggedOnce(t *testing.T) {
	for _, spool := range []bool{false, true} {
		var out syncLog
		opts := []agent.Option{agent.WithLogger(slog.New(slog.NewTextHandler(&out, nil))), agent.WithHost("h"),
			agent.WithStage(rateStage(t))}
		if spool {
			opts = append(opts, agent.WithSpool(t.TempDir(), agent.SpoolSync(agent.SyncNever)))
		}
		s, r := transport.Pipe()
		a, err := agent.New(s, opts...)
		require.NoError(t, err)
		for i := range 3 {
			require.NoError(t, a.Add(cumulative(float64(i), time.Now().Add(time.Duration(i)*time.Second))))
		}
		require.NoError(t, a.Close(context.Background()))
		require.NoError(t, r.Close())
		n := strings.Count(out.String(), "stages keep state in memory only")
		if spool {
			require.Zero(t, n)
		} else {
			require.Equal(t, 1, n)
		}
	}
}

// A batch the spool cannot store is dropped, and the stages go back to the
// state in the spool: the next collection is rated against the last point
// stored, so the rate covers the dropped interval too.
func TestStageStateBackAfterBatchNotStored(t *testing.T) {
	r := listenTCP(t, "tcp://127.0.0.1:0")
	defer r.Close()
	var col nameCollector
	stop := col.run(r, "c.rate")
	defer stop()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	a, err := agent.New(dialTCP(t, r.Addr()), agent.WithLogger(quiet), agent.WithHost("h"), agent.WithID("state"),
		agent.WithSpool(t.TempDir(), agent.SpoolSync(agent.SyncNever), agent.SpoolMaxBytes(16<<10)),
		agent.WithBatch(100_000, 20*time.Millisecond), agent.WithStage(rateStage(t)))
	require.NoError(t, err)
	require.NoError(t, a.Add(cumulative(100, t0)))
	require.NoError(t, a.Add(cumulative(105, t0.Add(5*time.Second)))) // 1/s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, a.Close(context.Background()))
	}()
	require.Eventually(t, func() bool { return len(col.values()) == 1 }, 5*time.Second, 10*time.Millisecond)

	// 4/s, in a batch over the spool's bound: dropped.
	big := meter.Measurement{Name: "big", Kind: meter.Gauge, Value: 1, Time: t0}
	for i := range 20 {
		big.Labels = append(big.Labels, meter.Label{Key: "k" + strconv.Itoa(i), Value: strings.Repeat("x", 1000)})
	}
	require.NoError(t, a.Add(cumulative(125, t0.Add(10*time.Second)), big))
	require.Eventually(t, func() bool { return a.Stats().Dropped == 1 }, 5*time.Second, 10*time.Millisecond)

	require.NoError(t, a.Add(cumulative(135, t0.Add(20*time.Second))))
	require.Eventually(t, func() bool { return len(col.values()) == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []float64{1, 2}, col.values(), "(135-105)/15 s: against the last point stored")
}
