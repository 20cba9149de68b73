package publisher_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/aggregate"
	"github.com/meterkit/meter/stage/levels"
	"github.com/meterkit/meter/transport"
)

// idSink records what it is given with the batch ids (sink.NamedWriter).
type idSink struct {
	mu  sync.Mutex
	ids []sink.BatchID
	ms  []meter.Measurement
}

func (s *idSink) Write(ctx context.Context, b []meter.Measurement) error {
	return s.WriteFrom(ctx, sink.BatchID{}, 0, b)
}

func (s *idSink) WriteFrom(_ context.Context, id sink.BatchID, _ int, b []meter.Measurement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range b {
		m.Labels = append([]meter.Label(nil), m.Labels...)
		s.ms = append(s.ms, m)
		s.ids = append(s.ids, id)
	}
	return nil
}

func (s *idSink) Close(context.Context) error { return nil }

// named returns the measurements named name and their batch ids.
func (s *idSink) named(name string) ([]meter.Measurement, []sink.BatchID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ms []meter.Measurement
	var ids []sink.BatchID
	for i, m := range s.ms {
		if m.Name == name {
			ms, ids = append(ms, m), append(ids, s.ids[i])
		}
	}
	return ms, ids
}

func (s *idSink) values(name string) []float64 {
	ms, _ := s.named(name)
	var v []float64
	for _, m := range ms {
		v = append(v, m.Value)
	}
	return v
}

func levelsStage(t *testing.T) stage.Stage {
	warn := 10.0
	l, err := levels.New(levels.Config{Meters: stage.MustCompileMeters("cpu.util"), Warning: &warn})
	require.NoError(t, err)
	return stage.Named("levels", l)
}

// A stage that keeps state needs the spool, where its state is committed
// with each batch: New refuses it without, naming it.
func TestNewRefusesStatefulStageWithoutSpool(t *testing.T) {
	_, r := transportPair(t, true)
	defer r.Close()
	_, err := publisher.New(r, publisher.WithLogger(quiet), publisher.WithSink("d", sink.Discard),
		publisher.WithStage(levelsStage(t)))
	require.ErrorContains(t, err, `stage "levels" keeps state`)
	require.ErrorContains(t, err, "WithSpool")

	_, err = publisher.New(r, publisher.WithLogger(quiet), publisher.WithSink("d", sink.Discard),
		publisher.WithStage(levelsStage(t)), publisher.WithSpool(t.TempDir()))
	require.NoError(t, err)
	_, err = publisher.New(r, publisher.WithTickInterval(-time.Second), publisher.WithSink("d", sink.Discard))
	require.ErrorContains(t, err, "WithTickInterval")
}

// Open windows are state: committed with the batches, restored at each
// start (not emitted at shutdown), and emitted once by a tick, as a batch
// of the publisher's own identity, over real mangos sockets.
func TestAggregateStateRestoredAndTickBatchesUnderPublisherIdentity(t *testing.T) {
	dir := t.TempDir()
	rec := &idSink{}
	lateness := meter.Duration(0)
	agg := func() stage.Stage {
		a, err := aggregate.New(aggregate.Config{Meters: stage.MustCompileMeters("x"), Window: meter.Duration(time.Minute),
			Lateness: &lateness, Functions: []string{"sum", "count"}, DropInput: true})
		require.NoError(t, err)
		return stage.Named("agg", a)
	}
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	x := func(v float64, at time.Duration) meter.Measurement {
		return meter.Measurement{Name: "x", Kind: meter.Gauge, Value: v, Time: t0.Add(at), Host: "h"}
	}
	run := func(tick time.Duration, want int, envs ...*transport.Envelope) {
		s, p, stop := stagedPublisher(t, true, publisher.WithSink("rec", rec), publisher.WithSpool(dir, publisher.SpoolSync(publisher.SyncNever)),
			publisher.WithStage(agg()), publisher.WithID("p1"), publisher.WithTickInterval(tick))
		for _, env := range envs {
			require.NoError(t, s.Send(context.Background(), env))
		}
		if tick < time.Hour {
			require.Eventually(t, func() bool { return len(rec.values("x.sum")) >= want }, 5*time.Second, 10*time.Millisecond)
			time.Sleep(5 * tick) // more ticks: nothing more is emitted
		}
		stop()
		st := p.Stats()
		require.Equal(t, uint64(len(envs)), st.FilteredEnvelopes+st.Duplicates)
		require.Equal(t, uint64(min(len(envs), 1)), st.FilteredEnvelopes)
		require.Equal(t, uint64(want)*2, st.Ticked)
	}
	// Two runs fill the window (times in the past, ticks too rare to close it).
	// Each batch stages to nothing (drop_input, the window open): acked OK,
	// counted filtered, its state and de-duplication mark committed
	// together, so that the resend of batch 1 after the restart is a
	// duplicate and is not added again.
	first := envelope(1, x(1, time.Second), x(2, 2*time.Second))
	run(time.Hour, 0, first)
	run(time.Hour, 0, envelope(2, x(4, 3*time.Second)), first)
	require.Empty(t, rec.values("x.sum"), "an open window is not emitted at shutdown")
	// The third run's first tick closes it.
	run(10*time.Millisecond, 1)
	require.Equal(t, []float64{7}, rec.values("x.sum"))
	require.Equal(t, []float64{3}, rec.values("x.count"))
	ms, ids := rec.named("x.sum")
	require.Equal(t, "publisher/p1", ids[0].Agent)
	require.Equal(t, "p1", labelOf(ms[0], aggregate.PublisherLabel), "the publisher's id labels its aggregates")
	require.Greater(t, ids[0].Seq, uint64(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()),
		"own sequences go on from the clock, as an agent's do")
}

// Per agent, a batch with a sequence not above the last one staged skips
// the order-sensitive stages (levels), counted; the levels' hysteresis
// is not disturbed by it.
func TestOutOfOrderBatchSkipsLevels(t *testing.T) {
	rec := &idSink{}
	s, p, stop := stagedPublisher(t, true, publisher.WithSink("rec", rec), publisher.WithSpool(t.TempDir(), publisher.SpoolSync(publisher.SyncNever)),
		publisher.WithStage(levelsStage(t)))
	send := func(agent string, seq uint64, v float64) {
		m := gauge("cpu.util", v)
		m.Host = agent
		env := envelope(seq, m)
		env.Agent = agent
		require.NoError(t, s.Send(context.Background(), env))
	}
	send("a1", 5, 20) // warning
	send("a1", 3, 5)  // out of order: passes levels unlabelled
	send("a1", 6, 20) // still warning: no change
	send("a2", 1, 5)  // another agent has its own order
	require.Eventually(t, func() bool { return len(rec.values("cpu.util")) == 4 }, 5*time.Second, 10*time.Millisecond)
	stop()
	require.Equal(t, uint64(1), p.Stats().OutOfOrder)
	require.Len(t, rec.values(meter.StateChange), 1, "one change: ok to warning")
	ms, _ := rec.named("cpu.util")
	require.Equal(t, "", labelOf(ms[1], meter.StateLabel), "the out-of-order batch is not labelled")
	require.Equal(t, "warning", labelOf(ms[2], meter.StateLabel))
}

func labelOf(m meter.Measurement, key string) string {
	for _, l := range m.Labels {
		if l.Key == key {
			return l.Value
		}
	}
	return ""
}

// numberer is a stateful stage that adds to each batch a measurement "n"
// numbering the batches it staged; its Checkpoint fails when told to.
type numberer struct {
	n        int
	failNext atomic.Bool
}

func (s *numberer) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	s.n++
	out = append(out, in...)
	return append(out, meter.Measurement{Name: "n", Kind: meter.Gauge, Value: float64(s.n), Time: in[0].Time, Host: "h"}), nil
}

func (s *numberer) Checkpoint() ([]byte, error) {
	if s.failNext.CompareAndSwap(true, false) {
		return nil, errors.New("checkpoint failed")
	}
	return json.Marshal(s.n)
}

func (s *numberer) Restore(b []byte) error { return json.Unmarshal(b, &s.n) }

// After a failure between staging a batch and committing it (the
// checkpoint fails; the spool refuses the batch), the stages go back to
// the state last committed: the resend is staged from the same state and
// gets the same output, and nothing is numbered twice or skipped.
func TestFailedCommitResendStagedFromSameState(t *testing.T) {
	rec := &idSink{}
	num := &numberer{}
	s, p, stop := stagedPublisher(t, true, publisher.WithSink("rec", rec),
		publisher.WithSpool(t.TempDir(), publisher.SpoolSync(publisher.SyncNever), publisher.SpoolMaxBytes(8<<10)),
		publisher.WithStage(stage.Named("num", num)))
	send := func(seq uint64, ms ...meter.Measurement) error {
		return s.Send(context.Background(), envelope(seq, ms...))
	}
	require.NoError(t, send(1, gauge("g", 1)))
	num.failNext.Store(true)
	err := send(2, gauge("g", 2))
	var re *transport.ReplyError
	require.ErrorAs(t, err, &re)
	require.Equal(t, transport.StatusRetry, re.Ack.Status)
	require.NoError(t, send(2, gauge("g", 2)), "the resend")
	// A batch over the spool's bound: the spool write fails.
	big := gauge("g", 3)
	big.Labels = []meter.Label{{Key: "pad", Value: strings.Repeat("x", 10<<10)}}
	require.ErrorAs(t, send(3, big), &re)
	require.NoError(t, send(4, gauge("g", 4)))
	require.Eventually(t, func() bool { return len(rec.values("n")) == 3 }, 5*time.Second, 10*time.Millisecond)
	stop()
	require.Equal(t, []float64{1, 2, 3}, rec.values("n"))
	require.Equal(t, []float64{1, 2, 4}, rec.values("g"))
	require.Equal(t, uint64(3), p.Stats().Spooled/2)
}
