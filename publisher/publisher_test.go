package publisher_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func envelope(seq uint64, ms ...meter.Measurement) *transport.Envelope {
	return &transport.Envelope{Version: transport.Version, Agent: "a1", Seq: seq, SentAt: time.Now(), Measurements: ms}
}

func gauge(name string, v float64) meter.Measurement {
	return meter.Measurement{Name: name, Kind: meter.Gauge, Value: v, Time: time.Unix(1700000000, 0), Host: "h"}
}

// fnSink is a Sink whose Write the test decides.
type fnSink struct {
	write  func(batch []meter.Measurement) error
	active atomic.Int32
	overlp atomic.Bool
	closed atomic.Int32
}

func (f *fnSink) Write(_ context.Context, b []meter.Measurement) error {
	if f.active.Add(1) > 1 {
		f.overlp.Store(true)
	}
	defer f.active.Add(-1)
	time.Sleep(100 * time.Microsecond)
	return f.write(b)
}

func (f *fnSink) Close(context.Context) error { f.closed.Add(1); return nil }

func run(t *testing.T, opts ...publisher.Option) (transport.Sender, *publisher.Publisher, func()) {
	s, r := transport.Pipe()
	p, err := publisher.New(r, append([]publisher.Option{publisher.WithLogger(quiet)}, opts...)...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return s, p, func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, p.Close(context.Background()))
		require.NoError(t, p.Close(context.Background()), "Close twice")
	}
}

func TestWritesAndAcks(t *testing.T) {
	var rec sink.Recorder
	s, p, stop := run(t, publisher.WithSink("rec", &rec))
	require.NoError(t, s.Send(context.Background(), envelope(1, gauge("a", 1), gauge("b", 2))))
	stop()
	require.Len(t, rec.Measurements(), 2)
	require.True(t, rec.Closed(), "Close closes the sinks")
	st := p.Stats()
	require.Equal(t, uint64(1), st.Acked)
	require.Equal(t, uint64(2), st.Written)
}

func TestInvalidMeasurementsAreDroppedRestGoesOn(t *testing.T) {
	var rec sink.Recorder
	s, p, stop := run(t, publisher.WithSink("rec", &rec))
	defer stop()
	err := s.Send(context.Background(), envelope(1, gauge("a", 1), gauge("bad", math.NaN()), gauge("", 3), gauge("c", 4)))
	require.NoError(t, err, "a batch with some valid measurements is accepted")
	names := []string{}
	for _, m := range rec.Measurements() {
		names = append(names, m.Name)
	}
	require.Equal(t, []string{"a", "c"}, names)
	require.Equal(t, uint64(2), p.Stats().Invalid)

	err = s.Send(context.Background(), envelope(2, gauge("bad", math.Inf(1))))
	require.ErrorIs(t, err, transport.ErrRejected)
	require.ErrorContains(t, err, "Value")
}

func TestFailingSinkIsNotAcked(t *testing.T) {
	down := errors.New("connection refused")
	var fail atomic.Bool
	fail.Store(true)
	fs := &fnSink{write: func([]meter.Measurement) error {
		if fail.Load() {
			return down
		}
		return nil
	}}
	s, p, stop := run(t, publisher.WithSink("flaky", fs))
	defer stop()
	err := s.Send(context.Background(), envelope(1, gauge("a", 1)))
	require.ErrorIs(t, err, transport.ErrRetry, "agent must keep and resend the batch")
	require.ErrorContains(t, err, "connection refused")
	require.ErrorContains(t, err, `sink "flaky"`)
	require.Equal(t, uint64(1), p.Stats().RetryEnvelopes)
	require.Zero(t, p.Stats().Acked)

	fail.Store(false)
	require.NoError(t, s.Send(context.Background(), envelope(1, gauge("a", 1))))
}

func TestPermanentSinkErrorRejects(t *testing.T) {
	fs := &fnSink{write: func([]meter.Measurement) error { return sink.Permanent(errors.New("400 bad sample")) }}
	s, _, stop := run(t, publisher.WithSink("strict", fs))
	defer stop()
	err := s.Send(context.Background(), envelope(1, gauge("a", 1)))
	require.ErrorIs(t, err, transport.ErrRejected)
	require.ErrorContains(t, err, "400 bad sample")
}

func TestPartialRejectionIsAcked(t *testing.T) {
	fs := &fnSink{write: func([]meter.Measurement) error {
		return &sink.PartialError{Rejected: []int{1}, Err: errors.New("unknown metric")}
	}}
	s, p, stop := run(t, publisher.WithSink("partial", fs))
	defer stop()
	require.NoError(t, s.Send(context.Background(), envelope(1, gauge("a", 1), gauge("b", 1))))
	require.Equal(t, uint64(1), p.Stats().SinkRejected)
}

func TestSinkIsNeverWrittenConcurrently(t *testing.T) {
	var n atomic.Int64
	fs := &fnSink{write: func(b []meter.Measurement) error { n.Add(int64(len(b))); return nil }}
	s, _, stop := run(t, publisher.WithSink("one", fs), publisher.WithWorkers(8))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 10 {
				require.NoError(t, s.Send(context.Background(), envelope(uint64(i*10+j+1), gauge("x", 1), gauge("y", 2))))
			}
		})
	}
	wg.Wait()
	stop()
	require.Equal(t, int64(320), n.Load())
	require.False(t, fs.overlp.Load(), "Write was called concurrently")
	require.Equal(t, int32(1), fs.closed.Load())
}

func TestSealedEnvelopeRejectedWithoutKeys(t *testing.T) {
	var rec sink.Recorder
	s, _, stop := run(t, publisher.WithSink("rec", &rec))
	defer stop()
	env := envelope(1)
	env.Sealed = []byte{1, 2, 3}
	err := s.Send(context.Background(), env)
	require.ErrorIs(t, err, transport.ErrRejected)
	// The configuration refuses the agent: it keeps its batches and says so.
	require.ErrorIs(t, err, transport.ErrRefused)
	require.Zero(t, rec.Len())
}

func TestOptionErrors(t *testing.T) {
	_, r := transport.Pipe()
	_, err := publisher.New(r)
	require.ErrorContains(t, err, "no sink")
	_, err = publisher.New(r, publisher.WithSink("x", sink.Discard), publisher.WithSink("x", sink.Discard))
	require.ErrorContains(t, err, "added twice")
	_, err = publisher.New(nil, publisher.WithSink("x", sink.Discard))
	require.Error(t, err)
	// A negative count or duration is an error naming the option.
	for name, o := range map[string]publisher.Option{
		"WithWorkers":           publisher.WithWorkers(-1),
		"WithWriteTimeout":      publisher.WithWriteTimeout(-time.Second),
		"WithDrainTimeout":      publisher.WithDrainTimeout(-time.Second),
		"WithDedupWindow count": publisher.WithDedupWindow(-1, 0),
		"WithDedupWindow age":   publisher.WithDedupWindow(0, -time.Second),
		"WithBackoff min":       publisher.WithBackoff(-time.Second, 0),
		"WithBackoff max":       publisher.WithBackoff(0, -time.Second),
		"WithStatsInterval":     publisher.WithStatsInterval(-2),
	} {
		_, err := publisher.New(r, publisher.WithSink("x", sink.NewDiscard()), o)
		require.ErrorContains(t, err, "publisher: "+name+": negative ", name)
	}
	_, err = publisher.New(r, publisher.WithSink("x", sink.NewDiscard()), publisher.WithBackoff(time.Second, time.Millisecond))
	require.ErrorContains(t, err, "max below min")
	// Zero is the default, never "no limit" or "expire at once".
	p, err := publisher.New(r, publisher.WithSink("x", sink.NewDiscard()), publisher.WithWorkers(0),
		publisher.WithWriteTimeout(0), publisher.WithDrainTimeout(0), publisher.WithDedupWindow(0, 0),
		publisher.WithBackoff(0, 0), publisher.WithStatsInterval(publisher.NoStats))
	require.NoError(t, err)
	require.NoError(t, p.Close(context.Background()))
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Log lines about an envelope name it, and a worker's next envelope is
// named afresh.
func TestLogLinesNameTheEnvelope(t *testing.T) {
	var out lockedBuffer
	var rec sink.Recorder
	s, _, stop := run(t, publisher.WithSink("rec", &rec), publisher.WithWorkers(1),
		publisher.WithLogger(slog.New(slog.NewTextHandler(&out, nil))))
	defer stop()
	require.NoError(t, s.Send(context.Background(), envelope(1, gauge("a", 1), gauge("bad", math.NaN()))))
	require.NoError(t, s.Send(context.Background(), envelope(2, gauge("b", 1))))
	require.NoError(t, s.Send(context.Background(), envelope(3, gauge("c", 1), gauge("", 1))))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2, "only the envelopes with invalid measurements log: %q", lines)
	require.Contains(t, lines[0], "agent=a1 seq=1 ")
	require.Contains(t, lines[1], "agent=a1 seq=3 ")
}
