package publisher_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/transport"
)

func sendSeqs(t *testing.T, s transport.Sender, from, to uint64) {
	t.Helper()
	for seq := from; seq <= to; seq++ {
		require.NoError(t, s.Send(context.Background(), envelope(seq, gauge("m", float64(seq)))))
	}
}

func values(ms []meter.Measurement) []float64 {
	out := make([]float64, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Value)
	}
	return out
}

func sinkStats(p *publisher.Publisher, name string) (publisher.SinkStats, bool) {
	for _, st := range p.SinkStats() {
		if st.Name == name {
			return st, true
		}
	}
	return publisher.SinkStats{}, false
}

func TestReconfigureKeepsReplacesAddsAndRemovesSinks(t *testing.T) {
	for _, spooled := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "spool"}[spooled], func(t *testing.T) {
			kept := &fnSink{}
			var keptRec sink.Recorder
			kept.write = func(b []meter.Measurement) error { return keptRec.Write(context.Background(), b) }
			var removed, replaced, replacement, added sink.Recorder
			opts := []publisher.Option{publisher.WithSink("kept", kept), publisher.WithSink("removed", &removed),
				publisher.WithSink("replaced", &replaced)}
			if spooled {
				opts = append(opts, publisher.WithSpool(t.TempDir()))
			}
			s, p, stop := run(t, opts...)
			defer stop()
			sendSeqs(t, s, 1, 3)
			require.Eventually(t, func() bool { return removed.Len() == 3 && replaced.Len() == 3 }, 5*time.Second, time.Millisecond)

			require.NoError(t, p.Reconfigure(context.Background(), publisher.WithSink("kept", kept),
				publisher.WithSink("replaced", &replacement), publisher.WithSink("added", &added)))
			require.True(t, removed.Closed(), "a removed sink is closed")
			require.True(t, replaced.Closed(), "a replaced sink is closed")
			require.Zero(t, kept.closed.Load(), "a kept sink keeps running")

			sendSeqs(t, s, 4, 6)
			require.Eventually(t, func() bool { return keptRec.Len() == 6 && added.Len() == 3 && replacement.Len() == 3 },
				5*time.Second, time.Millisecond)
			require.Equal(t, []float64{1, 2, 3, 4, 5, 6}, values(keptRec.Measurements()), "nothing lost or doubled on the kept sink")
			require.Equal(t, []float64{4, 5, 6}, values(added.Measurements()))
			require.Equal(t, []float64{4, 5, 6}, values(replacement.Measurements()))
			require.Equal(t, 3, removed.Len(), "a removed sink is written no more")
			st, ok := sinkStats(p, "replaced")
			require.True(t, ok)
			require.Equal(t, uint64(6), st.Written, "a sink replaced in place keeps its figures")
			if spooled {
				require.Eventually(t, func() bool { return p.Stats().Pending == 0 }, 5*time.Second, time.Millisecond)
				st, ok := sinkStats(p, "removed")
				require.True(t, ok, "the removed sink's lane is reported")
				require.True(t, st.Detached)
				require.Zero(t, st.Pending)
			}
		})
	}
}

func TestReconfigureKeepsTheLaneOfARemovedSinkAndDeliversItWhenItReturns(t *testing.T) {
	dir := t.TempDir()
	var a sink.Recorder
	down := &switchable{}
	down.down.Store(true)
	s, p, stop := run(t, publisher.WithSink("a", &a), publisher.WithSink("b", down), publisher.WithSpool(dir),
		publisher.WithBackoff(time.Millisecond, 5*time.Millisecond))
	sendSeqs(t, s, 1, 3)
	require.Eventually(t, func() bool { return a.Len() == 3 && p.Stats().SinkRetries > 0 }, 5*time.Second, time.Millisecond)

	require.NoError(t, p.Reconfigure(context.Background(), publisher.WithSink("a", &a)))
	st, ok := sinkStats(p, "b")
	require.True(t, ok, "the lane of the removed sink is reported")
	require.True(t, st.Detached)
	require.Equal(t, uint64(3), st.Pending, "and keeps its batches")
	sendSeqs(t, s, 4, 5)
	require.Eventually(t, func() bool { return a.Len() == 5 }, 5*time.Second, time.Millisecond)
	st, _ = sinkStats(p, "b")
	require.Equal(t, uint64(3), st.Pending, "a detached lane takes no new batches")

	// The sink comes back, as another value under the same name: its lane is
	// delivered, in order.
	back := &switchable{}
	require.NoError(t, p.Reconfigure(context.Background(), publisher.WithSink("a", &a), publisher.WithSink("b", back)))
	require.Eventually(t, func() bool { return back.rec.Len() == 3 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []float64{1, 2, 3}, values(back.rec.Measurements()))
	st, _ = sinkStats(p, "b")
	require.False(t, st.Detached)
	require.Eventually(t, func() bool { st, _ := sinkStats(p, "b"); return st.Pending == 0 }, 5*time.Second, time.Millisecond)

	// Removed again with batches in its lane, then the publisher restarts
	// without it: the lane is still there, reported, and delivered once the
	// sink is configured again.
	back.down.Store(true)
	require.NoError(t, p.Reconfigure(context.Background(), publisher.WithSink("a", &a), publisher.WithSink("b", back)))
	sendSeqs(t, s, 6, 7)
	require.Eventually(t, func() bool { return a.Len() == 7 }, 5*time.Second, time.Millisecond)
	require.NoError(t, p.Reconfigure(context.Background(), publisher.WithSink("a", &a)))
	stop()

	s2, p2, stop2 := run(t, publisher.WithSink("a", &a), publisher.WithSpool(dir))
	st, ok = sinkStats(p2, "b")
	require.True(t, ok, "reported at start")
	require.True(t, st.Detached)
	require.Equal(t, uint64(2), st.Pending)
	_ = s2
	stop2()

	back.down.Store(false)
	_, p3, stop3 := run(t, publisher.WithSink("a", &a), publisher.WithSink("b", back), publisher.WithSpool(dir))
	defer stop3()
	require.Eventually(t, func() bool { return back.rec.Len() == 5 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []float64{1, 2, 3, 6, 7}, values(back.rec.Measurements()))
	require.Eventually(t, func() bool { return p3.Stats().Pending == 0 }, 5*time.Second, time.Millisecond)
}

// numbering is a stateful stage: it labels each measurement with how many
// it has seen.
type numbering struct{ n int }

func (c *numbering) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	for _, m := range in {
		c.n++
		m.Value = float64(c.n)
		out = append(out, m)
	}
	return out, nil
}
func (c *numbering) Checkpoint() ([]byte, error) { return json.Marshal(c.n) }
func (c *numbering) Restore(b []byte) error      { return json.Unmarshal(b, &c.n) }

func TestReconfigureStagesKeepTheStateOfTheStagesKept(t *testing.T) {
	var rec sink.Recorder
	s, p, stop := run(t, publisher.WithSink("rec", &rec), publisher.WithSpool(t.TempDir()),
		publisher.WithStage(stage.Chain(stage.Named("count", &numbering{}), stage.Named("other", &numbering{}))))
	defer stop()
	sendSeqs(t, s, 1, 3)
	// "count" is kept (a new value under its name: its state carries over),
	// "other" is gone, "fresh" is new.
	require.NoError(t, p.Reconfigure(context.Background(), publisher.WithSink("rec", &rec),
		publisher.WithStage(stage.Chain(stage.Named("fresh", &numbering{}), stage.Named("count", &numbering{})))))
	sendSeqs(t, s, 4, 5)
	require.Eventually(t, func() bool { return rec.Len() == 5 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []float64{1, 2, 3, 4, 5}, values(rec.Measurements()), "the kept stage counts on")

	require.NoError(t, p.Reconfigure(context.Background(), publisher.WithSink("rec", &rec)))
	sendSeqs(t, s, 6, 6)
	require.Eventually(t, func() bool { return rec.Len() == 6 }, 5*time.Second, time.Millisecond)
	require.Equal(t, 6.0, rec.Measurements()[5].Value, "without stages, measurements go through as they are")
}

// A stateful stage needs the spool, given by Reconfigure as by New.
func TestReconfigureRefusesAStatefulStageWithoutSpool(t *testing.T) {
	var rec sink.Recorder
	s, p, stop := run(t, publisher.WithSink("rec", &rec))
	defer stop()
	err := p.Reconfigure(context.Background(), publisher.WithSink("rec", &rec),
		publisher.WithStage(stage.Named("count", &numbering{})))
	require.ErrorContains(t, err, "needs WithSpool")
	sendSeqs(t, s, 1, 1)
	require.Equal(t, []float64{1}, values(rec.Measurements()), "the stages in use (none) stay")
}

func TestReconfigureRefusesWhatNeedsANewPublisher(t *testing.T) {
	var rec sink.Recorder
	_, p, stop := run(t, publisher.WithSink("rec", &rec))
	defer stop()
	require.ErrorContains(t, p.Reconfigure(context.Background(), publisher.WithSink("rec", &rec), publisher.WithWorkers(2)),
		"only WithSink")
	require.ErrorContains(t, p.Reconfigure(context.Background()), "no sink")
	require.Error(t, p.Reconfigure(context.Background(), publisher.WithSink("rec", nil)))
	require.False(t, rec.Closed())
}

// Without a spool, a batch in hand when its second sink is removed is
// acknowledged once the first took it: the removed sink is no longer one
// of those it must reach, and the agent need not resend (which would write
// the first sink twice).
func TestReconfigureRemovesASinkABatchInHandHasNotReached(t *testing.T) {
	release := make(chan struct{})
	var first sink.Recorder
	slow := &fnSink{write: func(b []meter.Measurement) error {
		<-release
		return first.Write(context.Background(), b)
	}}
	var second sink.Recorder
	s, p, stop := run(t, publisher.WithSink("first", slow), publisher.WithSink("second", &second))
	defer stop()
	sent := make(chan error, 1)
	go func() { sent <- s.Send(context.Background(), envelope(1, gauge("m", 1))) }()
	require.Eventually(t, func() bool { return slow.active.Load() == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, p.Reconfigure(context.Background(), publisher.WithSink("first", slow)))
	require.True(t, second.Closed())
	close(release)
	require.NoError(t, <-sent, "acknowledged: the removed sink is not waited for")
	require.Equal(t, 1, first.Len())
	require.Zero(t, second.Len())
	require.Zero(t, p.Stats().RetryEnvelopes)
}
