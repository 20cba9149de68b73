package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/transport"
)

// collecting is a driver whose collections are n measurements of about
// size bytes each.
func collecting(n, size int) driverFunc {
	return func() []meter.Measurement {
		ms := make([]meter.Measurement, n)
		for i := range ms {
			ms[i] = labelled("q", float64(i), size)
		}
		return ms
	}
}

// Under a store slower than the drivers, the in-memory queue holds at most
// its byte bound, and drops the oldest batches, counted.
func TestQueueHoldsAtMostItsByteBound(t *testing.T) {
	const bound = 32 << 10
	s, r := transport.Pipe()
	slow := collector{verdict: func(*transport.Envelope) transport.Ack {
		time.Sleep(30 * time.Millisecond)
		return transport.Ack{Status: transport.StatusOK}
	}}
	stop := slow.run(t, r)
	defer stop()
	a, err := agent.New(s, agent.WithHost("h"), agent.WithLogger(quiet), agent.WithQueueBytes(bound),
		agent.WithBatch(0, time.Millisecond), agent.WithJitter(0),
		agent.WithDriver("fast", collecting(20, 180), agent.Interval(10*time.Millisecond)))
	require.NoError(t, err)
	cancel := start(t, a)
	peak := 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		peak = max(peak, a.Stats().QueuedBytes)
	}
	require.NoError(t, a.Close(context.Background()))
	_ = cancel()
	st := a.Stats()
	require.LessOrEqual(t, peak, bound)
	require.Greater(t, peak, bound/2, "the queue filled")
	require.NotZero(t, st.Dropped, "the store is slower: the oldest batches were dropped")
	require.NotZero(t, st.AckedMeasurements)
}

// A collection that does not fit waits, up to its driver's interval, for
// the senders to make room, rather than dropping older batches.
func TestQueueAdmissionWaitsForRoom(t *testing.T) {
	const bound = 20 << 10
	s, r := transport.Pipe()
	gate := make(chan struct{})
	third := collecting(40, 180)
	a, err := agent.New(s, agent.WithHost("h"), agent.WithLogger(quiet), agent.WithQueueBytes(bound),
		agent.WithBatch(0, time.Millisecond), agent.WithJitter(0),
		agent.WithDriver("late", driverFunc(func() []meter.Measurement { <-gate; return third() }), agent.Interval(time.Hour)))
	require.NoError(t, err)
	// Two collections' worth, about 16 KiB, queued and not acknowledged.
	require.NoError(t, a.Add(collecting(80, 180)()...))
	cancel := start(t, a)
	require.Eventually(t, func() bool { return a.Stats().QueuedBytes > 14<<10 }, 5*time.Second, time.Millisecond)
	// The third collection, about 8 KiB more, does not fit.
	close(gate)
	require.Eventually(t, func() bool { return a.Stats().Collections == 1 }, 5*time.Second, time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	st := a.Stats()
	require.Zero(t, st.Dropped)
	require.Equal(t, uint64(80), st.Added, "the third collection waits outside the queue")
	require.LessOrEqual(t, st.QueuedBytes, bound)

	var got collector
	stop := got.run(t, r)
	defer stop()
	require.Eventually(t, func() bool { return len(got.measurements()) == 120 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, cancel())
	st = a.Stats()
	require.Zero(t, st.Dropped)
	require.Zero(t, st.QueuedBytes)
	require.NoError(t, a.Close(context.Background()))
}
