package publisher_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/stale"
)

// changeSink keeps the state changes it is given, with their batch ids and
// when they arrived.
type changeSink struct {
	mu      sync.Mutex
	changes []arrived
}

type arrived struct {
	m  meter.Measurement
	id sink.BatchID
	at time.Time
}

func (s *changeSink) Write(ctx context.Context, b []meter.Measurement) error {
	return s.WriteFrom(ctx, sink.BatchID{}, 0, b)
}

func (s *changeSink) WriteFrom(_ context.Context, id sink.BatchID, _ int, b []meter.Measurement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range b {
		if m.Name == meter.StateChange {
			m.Labels = append([]meter.Label(nil), m.Labels...)
			s.changes = append(s.changes, arrived{m, id, time.Now()})
		}
	}
	return nil
}

func (s *changeSink) Close(context.Context) error { return nil }

func (s *changeSink) got() []arrived {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]arrived(nil), s.changes...)
}

// A host that stops sending is reported stale once, as a batch of the
// publisher's own identity, and fresh once when its data returns; after a
// publisher restart nothing is reported before one full `after`, though
// the host was silent longer than that while the publisher was down. Real
// mangos sockets, a real spool, the real clock.
func TestStaleThroughThePublisher(t *testing.T) {
	const after = 300 * time.Millisecond
	dir := t.TempDir()
	changes := &changeSink{}
	start := func() (func(seq uint64), *publisher.Publisher, func(), time.Time) {
		made := time.Now()
		st, err := stale.New(stale.Config{After: meter.Duration(after)})
		require.NoError(t, err)
		s, p, stop := stagedPublisher(t, true, publisher.WithSink("changes", changes),
			publisher.WithSpool(dir, publisher.SpoolSync(publisher.SyncNever)),
			publisher.WithStage(stage.Named("stale", st)), publisher.WithID("p1"), publisher.WithTickInterval(10*time.Millisecond))
		send := func(seq uint64) {
			env := envelope(seq, gauge("cpu.util", 5))
			env.Agent = "A"
			require.NoError(t, s.Send(context.Background(), env))
		}
		return send, p, stop, made
	}
	check := func(c arrived, value float64, from, to string) {
		t.Helper()
		require.Equal(t, value, c.m.Value)
		require.Equal(t, "A", c.m.ResourceID)
		require.Equal(t, "A", c.m.Host)
		require.Equal(t, stale.StateMeter, labelOf(c.m, meter.StateChangeMeter))
		require.Equal(t, from, labelOf(c.m, meter.StateChangeFrom))
		require.Equal(t, to, labelOf(c.m, meter.StateChangeTo))
	}

	send, p, stop, _ := start()
	require.Equal(t, "publisher/p1", p.OwnAgent())
	send(1) // then A stops
	require.Eventually(t, func() bool { return len(changes.got()) == 1 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(2 * after) // many more ticks: nothing more
	got := changes.got()
	require.Len(t, got, 1, "reported stale once")
	check(got[0], float64(meter.LevelStale), "ok", "stale")
	require.Equal(t, "publisher/p1", got[0].id.Agent, "a batch of the publisher's own identity")

	send(2) // A is back
	require.Eventually(t, func() bool { return len(changes.got()) >= 2 }, 5*time.Second, 5*time.Millisecond)
	got = changes.got()
	require.Len(t, got, 2, "fresh, with A's batch")
	check(got[1], float64(meter.LevelOK), "stale", "ok")
	require.Equal(t, sink.BatchID{Agent: "A", Seq: 2}, got[1].id)
	time.Sleep(after / 2)
	require.Len(t, changes.got(), 2)
	require.Equal(t, uint64(1), p.Stats().Stages[0].Stats.Series, "one host: the publisher's own batches are none")
	stop()

	// Down for twice `after`: A is long silent when the publisher starts
	// again, but nothing is reported before one full `after`.
	time.Sleep(2 * after)
	_, p, stop, made := start()
	defer stop()
	require.Eventually(t, func() bool { return len(changes.got()) == 3 }, 5*time.Second, 5*time.Millisecond)
	got = changes.got()
	check(got[2], float64(meter.LevelStale), "ok", "stale")
	require.Equal(t, "publisher/p1", got[2].id.Agent)
	require.GreaterOrEqual(t, got[2].at.Sub(made), after, "not before one full after since the start")
	time.Sleep(after)
	require.Len(t, changes.got(), 3, "once")
	require.Equal(t, uint64(1), p.Stats().Ticked)
}
