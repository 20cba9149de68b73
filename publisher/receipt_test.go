package publisher_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/riemann"
	"github.com/meterkit/meter/sink/riemann/riemanntest"
	"github.com/meterkit/meter/transport"
)

// measurements returns the server's events that are not receipts, by value.
func measurements(srv *riemanntest.Server) map[float64]int {
	got := map[float64]int{}
	for _, e := range srv.Events() {
		if len(e.Tags) == 1 && e.Tags[0] == riemann.ReceiptTag {
			continue
		}
		got[e.Metric]++
	}
	return got
}

func numbered(seq uint64, n int) *transport.Envelope {
	ms := make([]meter.Measurement, n)
	for i := range ms {
		ms[i] = gauge("m", float64(int(seq)*1000+i))
	}
	return envelope(seq, ms...)
}

func riemannSink(t *testing.T, srv *riemanntest.Server, receipts bool) sink.Sink {
	t.Helper()
	opts := []riemann.Option{riemann.WithTimeout(100 * time.Millisecond), riemann.WithDefaultHost("pub")}
	if receipts {
		opts = append(opts, riemann.WithReceipts(time.Minute))
	}
	s, err := riemann.New(srv.Addr(), opts...)
	require.NoError(t, err)
	return s
}

// A spooled batch whose write timed out while the server was busy reached
// the server after all. With receipts the lane sees that and does not write
// it again; without, the store holds it twice, and ResentInDoubt says so.
func TestSpoolLaneTimeoutInDoubt(t *testing.T) {
	for _, receipts := range []bool{true, false} {
		t.Run(map[bool]string{true: "receipts", false: "no receipts"}[receipts], func(t *testing.T) {
			srv := riemanntest.NewServer(t)
			s, p, stop := run(t, publisher.WithSink("riemann", riemannSink(t, srv, receipts)),
				publisher.WithSpool(t.TempDir()), publisher.WithBackoff(300*time.Millisecond, 300*time.Millisecond))
			defer stop()
			srv.Stall(0)
			require.NoError(t, s.Send(context.Background(), numbered(1, 50)), "acknowledged once spooled")
			require.Eventually(t, func() bool { return p.Stats().SinkRetries > 0 }, 5*time.Second, time.Millisecond,
				"the write times out while the server holds the Msg")
			// The server handles the stalled Msg now, before the lane's next
			// attempt (about 300 ms later).
			srv.Release()
			require.NoError(t, srv.WaitFor(50, time.Second))
			require.Eventually(t, func() bool { return p.Stats().Pending == 0 }, 5*time.Second, time.Millisecond)
			got := measurements(srv)
			require.Len(t, got, 50)
			st := p.Stats()
			if receipts {
				for v, n := range got {
					require.Equal(t, 1, n, "value %v", v)
				}
				require.Equal(t, uint64(50), st.Reconciled)
				require.Zero(t, st.ResentInDoubt)
			} else {
				require.Equal(t, 2, got[1000], "without receipts the batch is written twice")
				require.Equal(t, uint64(50), st.ResentInDoubt)
				require.Zero(t, st.Reconciled)
			}
		})
	}
}

// A publisher killed after the store took a batch and before it recorded
// the delivery finds the batch in its spool at the next start. Here the
// first publisher shuts down with its batches spooled (the store down), and
// the store receives one of them, with its receipts, behind the second
// publisher's back, as if the first had written it just before dying; the
// second publisher writes only the rest.
func TestSpoolRecoveredBatchesAreReconciled(t *testing.T) {
	srv := riemanntest.NewServer(t)
	dir := t.TempDir()
	srv.Stop()
	s, p, stop := run(t, publisher.WithSink("riemann", riemannSink(t, srv, true)), publisher.WithSpool(dir),
		publisher.WithBackoff(10*time.Millisecond, 20*time.Millisecond), publisher.WithDrainTimeout(50*time.Millisecond))
	for seq := uint64(1); seq <= 3; seq++ {
		require.NoError(t, s.Send(context.Background(), numbered(seq, 20)))
	}
	stop()
	require.Equal(t, uint64(60), p.Stats().Pending)

	require.NoError(t, srv.Start())
	w := riemannSink(t, srv, true).(*riemann.Sink)
	env := numbered(2, 20)
	id := sink.BatchID{Agent: env.Agent, Seq: 2}
	require.NoError(t, w.WriteFrom(context.Background(), id, 0, env.Measurements[:15]), "batch 2, in part")
	require.NoError(t, w.Close(context.Background()))

	_, p2, stop2 := run(t, publisher.WithSink("riemann", riemannSink(t, srv, true)), publisher.WithSpool(dir))
	defer stop2()
	require.Eventually(t, func() bool { return p2.Stats().Pending == 0 }, 5*time.Second, time.Millisecond)
	got := measurements(srv)
	require.Len(t, got, 60)
	for v, n := range got {
		require.Equal(t, 1, n, "value %v once", v)
	}
	st := p2.Stats()
	require.Equal(t, uint64(15), st.Reconciled)
	require.Equal(t, uint64(45), st.Written)
}

// Without a spool, a batch whose write failed after the store took it comes
// back from the agent; the publisher checks the receipts before writing it.
func TestDirectWriteResendIsReconciled(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s, p, stop := run(t, publisher.WithSink("riemann", riemannSink(t, srv, true)))
	defer stop()
	srv.Stall(0)
	env := numbered(5, 30)
	err := s.Send(context.Background(), env)
	require.ErrorIs(t, err, transport.ErrRetry, "the write timed out: the agent is told to resend")
	srv.Release()
	require.NoError(t, srv.WaitFor(31, 5*time.Second))
	require.NoError(t, s.Send(context.Background(), env), "the resend")
	got := measurements(srv)
	require.Len(t, got, 30)
	for v, n := range got {
		require.Equal(t, 1, n, "value %v once", v)
	}
	require.Equal(t, uint64(30), p.Stats().Reconciled)
}

// loggingWrapper is a user's pass-through wrapper written by hand, without
// sink.Wrap: it offers only Write and Close, so it hides the named write and
// the receipts of the sink it wraps.
type loggingWrapper struct {
	inner  sink.Sink
	writes *atomic.Int64
}

func (l loggingWrapper) Write(ctx context.Context, b []meter.Measurement) error {
	l.writes.Add(int64(len(b)))
	return l.inner.Write(ctx, b)
}

func (l loggingWrapper) Close(ctx context.Context) error { return l.inner.Close(ctx) }

func (l loggingWrapper) Unwrap() sink.Sink { return l.inner }

// A Riemann sink with receipts inside a user's logging wrapper: made with
// sink.Wrap, the wrapper keeps the receipts and a batch in doubt is
// reconciled, every write going through the wrapper; written by hand, it
// hides them (even with an Unwrap, which is for read-only capabilities) and
// the batch is resent, as ResentInDoubt says.
func TestWrappedSinkInDoubt(t *testing.T) {
	for _, helper := range []bool{true, false} {
		t.Run(map[bool]string{true: "sink.Wrap", false: "hand-written"}[helper], func(t *testing.T) {
			srv := riemanntest.NewServer(t)
			var writes atomic.Int64 // measurements given to the wrapper
			inner := riemannSink(t, srv, true)
			var s sink.Sink = loggingWrapper{inner, &writes}
			if helper {
				s = sink.Wrap(inner, func(ctx context.Context, b []meter.Measurement, next sink.WriteFunc) error {
					writes.Add(int64(len(b)))
					return next(ctx, b)
				})
			}
			snd, p, stop := run(t, publisher.WithSink("riemann", s),
				publisher.WithSpool(t.TempDir()), publisher.WithBackoff(300*time.Millisecond, 300*time.Millisecond))
			defer stop()
			srv.Stall(0)
			require.NoError(t, snd.Send(context.Background(), numbered(1, 50)))
			require.Eventually(t, func() bool { return p.Stats().SinkRetries > 0 }, 5*time.Second, time.Millisecond)
			srv.Release()
			require.NoError(t, srv.WaitFor(50, time.Second))
			require.Eventually(t, func() bool { return p.Stats().Pending == 0 }, 5*time.Second, time.Millisecond)
			got := measurements(srv)
			require.Len(t, got, 50)
			st := p.Stats()
			if helper {
				for v, n := range got {
					require.Equal(t, 1, n, "value %v", v)
				}
				require.Equal(t, uint64(50), st.Reconciled)
				require.Zero(t, st.ResentInDoubt)
				// Both attempts went through the wrapper, the second with
				// nothing left to write.
				require.Equal(t, int64(50), writes.Load())
			} else {
				require.Equal(t, 2, got[1000], "the wrapper hid the receipts: written twice")
				require.Equal(t, uint64(50), st.ResentInDoubt)
				require.Zero(t, st.Reconciled)
				require.Equal(t, int64(100), writes.Load())
			}
		})
	}
}
