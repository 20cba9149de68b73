package agent_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/transport"
)

// series is one collection of n cumulative series, all at value v.
func series(n int, v float64, at time.Time) []meter.Measurement {
	ms := make([]meter.Measurement, n)
	for i := range ms {
		ms[i] = cumulative(v, at)
		ms[i].Labels = []meter.Label{{Key: "s", Value: strconv.Itoa(i)}}
	}
	return ms
}

// tally counts the values of vs.
func tally(vs []float64) map[float64]int {
	m := map[float64]int{}
	for _, v := range vs {
		m[v]++
	}
	return m
}

const wholeBatch = 100

func wholeAgent(t *testing.T, addr, dir string, opts ...agent.SpoolOption) *agent.Agent {
	t.Helper()
	return wholeAgentOf(t, addr, dir, wholeBatch, opts...)
}

func wholeAgentOf(t *testing.T, addr, dir string, batch int, opts ...agent.SpoolOption) *agent.Agent {
	t.Helper()
	a, err := agent.New(dialTCP(t, addr), agent.WithLogger(quiet), agent.WithHost("h"), agent.WithID("whole"),
		agent.WithSpool(dir, append([]agent.SpoolOption{agent.SpoolSync(agent.SyncNever)}, opts...)...),
		agent.WithBatch(batch, time.Hour), agent.WithStage(rateStage(t)))
	require.NoError(t, err)
	return a
}

// drain runs a until the spool is delivered (each batch acknowledged by
// the receiver, after it kept it), then closes it.
func drain(t *testing.T, a *agent.Agent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, a.Run(ctx))
	require.NoError(t, a.Close(context.Background()))
}

// A collection's rates over more series than a batch holds are cut into
// several batches, and those go into the spool in one transaction with the
// state that made them: an agent stopped right after the collection, with
// nothing delivered and no batch left open (as a crash leaves it), comes
// back with every one of them and rates the next collection against it, so
// no interval is counted twice. Over real mangos sockets.
func TestWholeCollectionStoredWithItsState(t *testing.T) {
	const n = 3*wholeBatch + wholeBatch/2 // four batches of rates
	r := listenTCP(t, "tcp://127.0.0.1:0")
	defer r.Close()
	var got frames
	stop := got.run(r)
	defer stop()
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)

	a := wholeAgent(t, r.Addr(), dir)
	require.NoError(t, a.Add(series(n, 100, t0)...))                     // first points: no output
	require.NoError(t, a.Add(series(n, 110, t0.Add(10*time.Second))...)) // 1/s each
	st := a.Stats()
	require.Equal(t, uint64(4), st.Batches, "the rates cut into four batches")
	require.Equal(t, 4, st.Queued, "all four in the spool at once")
	require.NoError(t, a.Close(context.Background())) // no Run: nothing delivered

	a = wholeAgent(t, r.Addr(), dir)
	require.NoError(t, a.Add(series(n, 130, t0.Add(20*time.Second))...)) // 2/s against the points stored
	drain(t, a)
	got.mu.Lock()
	defer got.mu.Unlock()
	require.Equal(t, map[float64]int{1: n, 2: n}, tally(got.valuesOf("c.rate")), "every interval once, none twice")
	require.Len(t, got.seqs, 8)
	for i := 1; i < 4; i++ {
		require.Equal(t, got.seqs[i-1]+1, got.seqs[i], "one collection's batches are numbered consecutively")
	}
	for _, size := range got.counts {
		require.LessOrEqual(t, size, wholeBatch, "each batch within the batch count")
	}
}

// When the spool cannot take all of a collection's batches (here its bound
// is smaller than their total, larger than one of them), it takes none,
// they are counted dropped, and the stages go back to the state in the
// spool: the next collection is rated against the last point stored, so
// its rates cover the dropped interval, and no rate of the dropped
// collection is delivered.
func TestWholeCollectionNotStoredRollsBackState(t *testing.T) {
	const n = 3*wholeBatch + wholeBatch/2
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	// One batch of rates, encoded as the spool stores it.
	one := &transport.Envelope{Version: transport.Version, Tenant: "t", Agent: "whole", Seq: 1 << 50, SentAt: t0, Host: "h"}
	for i := range wholeBatch {
		m := cumulative(1.5, t0)
		m.Name, m.Kind, m.Unit = "c.rate", meter.Gauge, "B/s"
		m.Labels = []meter.Label{{Key: "s", Value: strconv.Itoa(i + 1000)}}
		one.Measurements = append(one.Measurements, m)
	}
	frame, err := transport.AppendEnvelope(nil, one)
	require.NoError(t, err)
	bound := int64(5 * len(frame) / 2) // room for two batches, not four

	r := listenTCP(t, "tcp://127.0.0.1:0")
	defer r.Close()
	var got frames
	stop := got.run(r)
	defer stop()
	a := wholeAgent(t, r.Addr(), t.TempDir(), agent.SpoolMaxBytes(bound))
	require.NoError(t, a.Add(series(n, 100, t0)...))
	require.NoError(t, a.Add(series(n, 110, t0.Add(10*time.Second))...))
	st := a.Stats()
	require.Equal(t, uint64(4), st.Dropped, "all four batches dropped")
	require.Equal(t, uint64(n), st.DroppedMeasurements)
	require.Zero(t, st.Queued, "none stored")

	const m = 2 * wholeBatch // two batches: they fit
	require.NoError(t, a.Add(series(m, 130, t0.Add(20*time.Second))...))
	require.Equal(t, 2, a.Stats().Queued)
	drain(t, a)
	got.mu.Lock()
	defer got.mu.Unlock()
	require.Equal(t, map[float64]int{1.5: m}, tally(got.valuesOf("c.rate")), "(130-100)/20 s: against the last points stored")
}

// The same when the output is cut by bytes, not by count: the rates of a
// collection, more bytes than the mangos sender's preferred frame (64 KiB)
// and far fewer than the batch count, are two batches, stored together
// with the state; none is left open for a crash to lose.
func TestWholeCollectionCutByBytesStoredWithItsState(t *testing.T) {
	const n = 400
	long := strings.Repeat("x", 200)
	labelled := func(ms []meter.Measurement) []meter.Measurement {
		for i := range ms {
			ms[i].Labels = append(ms[i].Labels, meter.Label{Key: "pad", Value: long})
		}
		return ms
	}
	r := listenTCP(t, "tcp://127.0.0.1:0")
	defer r.Close()
	var got frames
	stop := got.run(r)
	defer stop()
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)

	a := wholeAgentOf(t, r.Addr(), dir, 100_000)
	require.NoError(t, a.Add(labelled(series(n, 100, t0))...))
	require.NoError(t, a.Add(labelled(series(n, 110, t0.Add(10*time.Second)))...))
	st := a.Stats()
	require.Greater(t, st.Batches, uint64(1), "the rates cut by bytes")
	require.Equal(t, int(st.Batches), st.Queued, "all of them in the spool at once")
	require.NoError(t, a.Close(context.Background()))

	a = wholeAgentOf(t, r.Addr(), dir, 100_000)
	require.NoError(t, a.Add(labelled(series(n, 130, t0.Add(20*time.Second)))...))
	drain(t, a)
	got.mu.Lock()
	defer got.mu.Unlock()
	require.Equal(t, map[float64]int{1: n, 2: n}, tally(got.valuesOf("c.rate")), "every interval once, none twice, none left out")
}
