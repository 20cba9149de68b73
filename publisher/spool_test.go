package publisher_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

func TestDuplicateIsAckedButNotWrittenTwice(t *testing.T) {
	var rec sink.Recorder
	s, p, stop := run(t, publisher.WithSink("rec", &rec))
	defer stop()
	env := envelope(7, gauge("a", 1))
	require.NoError(t, s.Send(context.Background(), env))
	require.NoError(t, s.Send(context.Background(), env), "a resend after a lost ack is acknowledged")
	other := envelope(7, gauge("b", 1))
	other.Agent = "another-agent"
	require.NoError(t, s.Send(context.Background(), other), "the same seq from another agent is not a duplicate")
	require.Equal(t, 2, rec.Len())
	require.Equal(t, uint64(1), p.Stats().Duplicates)
}

// switchable fails while down is set.
type switchable struct {
	rec  sink.Recorder
	down atomic.Bool
}

func (s *switchable) Write(ctx context.Context, b []meter.Measurement) error {
	if s.down.Load() {
		return errors.New("store unavailable")
	}
	return s.rec.Write(ctx, b)
}
func (s *switchable) Close(context.Context) error { return nil } // reused across publishers

func TestSpoolAcksWhileStoreIsDownAndDrainsWhenBack(t *testing.T) {
	store := &switchable{}
	store.down.Store(true)
	s, p, stop := run(t, publisher.WithSink("store", store), publisher.WithSpool(t.TempDir()),
		publisher.WithBackoff(time.Millisecond, 5*time.Millisecond))
	defer stop()
	for seq := uint64(1); seq <= 5; seq++ {
		require.NoError(t, s.Send(context.Background(), envelope(seq, gauge("m", float64(seq)))),
			"acknowledged once spooled, though the store is down")
	}
	require.Eventually(t, func() bool { return p.Stats().SinkRetries > 0 }, 5*time.Second, time.Millisecond)
	require.Zero(t, store.rec.Len())
	require.Equal(t, uint64(5), p.Stats().Pending)

	store.down.Store(false)
	require.Eventually(t, func() bool { return store.rec.Len() == 5 }, 5*time.Second, time.Millisecond)
	for i, m := range store.rec.Measurements() {
		require.Equal(t, float64(i+1), m.Value, "delivered in order")
	}
	require.Eventually(t, func() bool { return p.Stats().Pending == 0 }, 5*time.Second, time.Millisecond)
}

// stalled blocks every Write until released.
type stalled struct{ release chan struct{} }

func (s stalled) Write(ctx context.Context, _ []meter.Measurement) error {
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (stalled) Close(context.Context) error { return nil }

func TestSlowSinkDoesNotStallOthers(t *testing.T) {
	slow := stalled{release: make(chan struct{})}
	var fast sink.Recorder
	s, _, stop := run(t, publisher.WithSink("slow", slow), publisher.WithSink("fast", &fast),
		publisher.WithSpool(t.TempDir()), publisher.WithDrainTimeout(100*time.Millisecond))
	defer stop()
	start := time.Now()
	for seq := uint64(1); seq <= 20; seq++ {
		require.NoError(t, s.Send(context.Background(), envelope(seq, gauge("m", 1))))
	}
	require.Eventually(t, func() bool { return fast.Len() == 20 }, 5*time.Second, time.Millisecond)
	require.Less(t, time.Since(start), 3*time.Second)
	close(slow.release)
}

func TestSpoolSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	store := &switchable{}
	store.down.Store(true)
	s, _, stop := run(t, publisher.WithSink("store", store), publisher.WithSpool(dir),
		publisher.WithDrainTimeout(20*time.Millisecond), publisher.WithBackoff(time.Millisecond, time.Millisecond))
	for seq := uint64(1); seq <= 3; seq++ {
		require.NoError(t, s.Send(context.Background(), envelope(seq, gauge("m", float64(seq)))))
	}
	stop() // as after a crash: three batches acknowledged, none delivered

	store.down.Store(false)
	s, p, stop := run(t, publisher.WithSink("store", store), publisher.WithSpool(dir))
	defer stop()
	require.Eventually(t, func() bool { return store.rec.Len() == 3 }, 5*time.Second, time.Millisecond)
	// The de-duplication window came back too: a resend of seq 2 is not delivered again.
	require.NoError(t, s.Send(context.Background(), envelope(2, gauge("m", 2))))
	require.Equal(t, uint64(1), p.Stats().Duplicates)
	require.Equal(t, 3, store.rec.Len())
}

func TestSpoolLaneBoundDropsOldest(t *testing.T) {
	store := &switchable{}
	store.down.Store(true)
	s, p, stop := run(t, publisher.WithSink("store", store), publisher.WithSpool(t.TempDir(), publisher.SpoolMaxBytes(400)),
		publisher.WithBackoff(time.Hour, time.Hour), publisher.WithDrainTimeout(10*time.Millisecond))
	defer stop()
	for seq := uint64(1); seq <= 20; seq++ {
		require.NoError(t, s.Send(context.Background(), envelope(seq, gauge("m", float64(seq)))))
	}
	st := p.Stats()
	require.Greater(t, st.SpoolDropped, uint64(0))
	require.Equal(t, uint64(20), st.SpoolDropped+st.Pending+st.Written, "every measurement is pending, delivered or counted as dropped")
}

func TestSpoolInUse(t *testing.T) {
	dir := t.TempDir()
	_, _, stop := run(t, publisher.WithSink("d", sink.Discard), publisher.WithSpool(dir))
	defer stop()
	_, r := transport.Pipe()
	_, err := publisher.New(r, publisher.WithSink("d", sink.Discard), publisher.WithSpool(dir))
	require.ErrorContains(t, err, "in use by another process")
}

// A spool file damaged beyond reading (a machine crash with SyncNever)
// stops New with an error that names it and says what to do, rather than a
// panic.
func TestDamagedSpoolIsAnError(t *testing.T) {
	dir := t.TempDir()
	store := &switchable{}
	store.down.Store(true)
	s, _, stop := run(t, publisher.WithSink("store", store), publisher.WithSpool(dir, publisher.SpoolSync(publisher.SyncNever)),
		publisher.WithBackoff(time.Hour, time.Hour), publisher.WithDrainTimeout(10*time.Millisecond))
	for seq := uint64(1); seq <= 200; seq++ {
		require.NoError(t, s.Send(context.Background(), envelope(seq, gauge("m", float64(seq)))))
	}
	stop()
	path := filepath.Join(dir, "publisher.spool")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	page := os.Getpagesize()
	for i := 2 * page; i < len(b); i++ { // every page after the two meta pages
		b[i] = 0xA5
	}
	require.NoError(t, os.WriteFile(path, b, 0o600))
	_, r := transport.Pipe()
	_, err = publisher.New(r, publisher.WithSink("store", store), publisher.WithSpool(dir))
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "move it away to start afresh")
}

// A resend that arrives while the first copy is still being written must not
// be acknowledged: the first copy may fail, and the agent would have
// forgotten the batch.
func TestResendDuringFirstCopyIsNotAcked(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var calls atomic.Int32
	fs := &fnSink{write: func([]meter.Measurement) error {
		if calls.Add(1) == 1 {
			entered <- struct{}{}
			<-release
			return errors.New("store fell over")
		}
		return nil
	}}
	s, p, stop := run(t, publisher.WithSink("flaky", fs), publisher.WithWorkers(2))
	defer stop()
	env := envelope(9, gauge("a", 1))
	first := make(chan error, 1)
	go func() { first <- s.Send(context.Background(), env) }()
	<-entered
	err := s.Send(context.Background(), env) // the agent resends while the first copy hangs
	require.ErrorIs(t, err, transport.ErrRetry, "not acknowledged while the first copy's fate is unknown")
	close(release)
	require.ErrorIs(t, <-first, transport.ErrRetry, "the first copy failed")
	require.NoError(t, s.Send(context.Background(), env), "the next resend is written")
	require.Equal(t, int32(2), calls.Load())
	require.Zero(t, p.Stats().Duplicates)
}

// The agent and the publisher share one spool option type and one sync
// policy type; the old SpoolNoSync still works.
func TestSpoolOptionsAreTheAgents(t *testing.T) {
	var opts []publisher.SpoolOption = []agent.SpoolOption{agent.SpoolSync(agent.SyncEvery(time.Second)), publisher.SpoolNoSync(),
		publisher.SpoolSync(publisher.SyncEvery(10 * time.Millisecond)), agent.SpoolMaxBytes(1 << 20)}
	var rec sink.Recorder
	s, p, stop := run(t, publisher.WithSink("rec", &rec), publisher.WithSpool(t.TempDir(), opts...))
	require.NoError(t, s.Send(context.Background(), envelope(1, gauge("m", 1))))
	require.Eventually(t, func() bool { return p.Stats().Pending == 0 && rec.Len() == 1 }, 5*time.Second, time.Millisecond)
	stop()
	_, err := publisher.New(nil, publisher.WithSpool(t.TempDir(), publisher.SpoolMaxBytes(0)))
	require.Error(t, err)
	_, r := transport.Pipe()
	_, err = publisher.New(r, publisher.WithSink("rec", &rec), publisher.WithSpool(t.TempDir(), publisher.SpoolMaxBytes(-1)))
	require.EqualError(t, err, "publisher: WithSpool: SpoolMaxBytes: negative count -1")
}

// An envelope of version 2 (the state field) is spooled as version 1: the
// spool file holds the label meterkit.state as a label, for a publisher of
// an earlier release to read, and what is delivered from it is unchanged.
func TestSpoolWritesVersionOne(t *testing.T) {
	dir := t.TempDir()
	store := &switchable{}
	store.down.Store(true)
	s, _, stop := run(t, publisher.WithSink("store", store), publisher.WithSpool(dir),
		publisher.WithDrainTimeout(20*time.Millisecond), publisher.WithBackoff(time.Millisecond, time.Millisecond))
	m := gauge("m", 1)
	m.Labels = []meter.Label{{Key: meter.StateLabel, Value: meter.StateCritical}}
	env := envelope(1, m)
	env.Version = 2
	require.NoError(t, s.Send(context.Background(), env))
	stop()

	var files int
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// Version 2 would hold the state in two bytes, without the key.
		if bytes.Contains(b, []byte(meter.StateLabel)) && bytes.Contains(b, []byte(meter.StateCritical)) {
			files++
		}
		return nil
	}))
	require.NotZero(t, files, "the label as a label in a spool file")

	store.down.Store(false)
	_, _, stop = run(t, publisher.WithSink("store", store), publisher.WithSpool(dir))
	defer stop()
	require.Eventually(t, func() bool { return store.rec.Len() == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, m.Labels, store.rec.Measurements()[0].Labels)
}
