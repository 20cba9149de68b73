package riemann_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/riemann"
	"github.com/meterkit/meter/sink/riemann/riemanntest"
)

// measurementsOf returns the server's events that are not receipts.
func measurementsOf(srv *riemanntest.Server) (events, receipts []riemanntest.Event) {
	for _, e := range srv.Events() {
		if len(e.Tags) == 1 && e.Tags[0] == riemann.ReceiptTag {
			receipts = append(receipts, e)
			continue
		}
		events = append(events, e)
	}
	return events, receipts
}

func TestReceiptsFollowEachMsg(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithBatchSize(10), riemann.WithReceipts(10*time.Minute), riemann.WithDefaultHost("pub1"))
	id := sink.BatchID{Tenant: "acme corp", Agent: "web/1", Seq: 42}
	ctx := context.Background()

	n, err := s.Stored(ctx, id)
	require.NoError(t, err)
	require.Zero(t, n, "no receipt yet")

	require.NoError(t, s.WriteFrom(ctx, id, 0, batchOf(25)))
	events, receipts := measurementsOf(srv)
	require.Len(t, events, 25)
	require.Equal(t, []int{11, 11, 6}, srv.MsgSizes(), "each Msg carries its receipt last")
	require.Len(t, receipts, 3)
	for i, want := range []float64{10, 20, 25} {
		r := receipts[i]
		require.Equal(t, riemann.ReceiptService+"acme%20corp/web%2F1/42", r.Service)
		require.Equal(t, "pub1", r.Host)
		require.Equal(t, want, r.Metric)
		require.True(t, r.HasTTL)
		require.EqualValues(t, 600, r.TTL)
		require.WithinDuration(t, time.Now(), r.Time, time.Minute, "a receipt is dated now, so the index keeps it for its ttl")
	}
	n, err = s.Stored(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 25, n)

	other := id
	other.Seq = 43
	n, err = s.Stored(ctx, other)
	require.NoError(t, err)
	require.Zero(t, n, "another batch's receipt is not ours")
}

func TestReceiptsResumeFromAPosition(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithReceipts(time.Minute))
	id := sink.BatchID{Tenant: "t", Agent: "a", Seq: 7}
	ctx := context.Background()
	b := batchOf(30)
	require.NoError(t, s.WriteFrom(ctx, id, 0, b[:12]))
	n, err := s.Stored(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 12, n)
	require.NoError(t, s.WriteFrom(ctx, id, n, b[n:]))
	n, err = s.Stored(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 30, n)
	events, _ := measurementsOf(srv)
	require.Len(t, events, 30, "each measurement once")
}

// A write that times out may still have reached the server: the receipt
// says so, and the caller does not send the batch again.
func TestReceiptAfterTimeout(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithReceipts(time.Minute), riemann.WithTimeout(100*time.Millisecond))
	id := sink.BatchID{Tenant: "t", Agent: "a", Seq: 1}
	ctx := context.Background()
	srv.Stall(0)
	err := s.WriteFrom(ctx, id, 0, batchOf(5))
	require.Error(t, err)
	require.False(t, sink.IsPermanent(err))
	srv.Release()
	require.NoError(t, srv.WaitFor(6, time.Second)) // 5 events and the receipt
	n, err := s.Stored(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 5, n, "the timed-out write reached the server")
}

// A refused Msg leaves no receipt for its events.
func TestRefusedMsgLeavesNoReceipt(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithReceipts(time.Minute), riemann.WithBatchSize(4))
	id := sink.BatchID{Tenant: "t", Agent: "a", Seq: 1}
	ctx := context.Background()
	require.NoError(t, s.WriteFrom(ctx, id, 0, batchOf(4)))
	srv.RejectNext(1, "no")
	err := s.WriteFrom(ctx, id, 4, batchOf(4))
	require.True(t, sink.IsPermanent(err), "%v", err)
	n, err := s.Stored(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 4, n)
}

func TestReceiptsOff(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr())
	id := sink.BatchID{Tenant: "t", Agent: "a", Seq: 1}
	require.NoError(t, s.WriteFrom(context.Background(), id, 0, batchOf(3)))
	_, receipts := measurementsOf(srv)
	require.Empty(t, receipts)
	_, err := s.Stored(context.Background(), id)
	require.ErrorIs(t, err, sink.ErrNoReceipts)
}

func TestStoredErrors(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithReceipts(time.Minute), riemann.WithTimeout(100*time.Millisecond))
	id := sink.BatchID{Tenant: "t", Agent: "a", Seq: 9}
	srv.Stop()
	_, err := s.Stored(context.Background(), id)
	require.ErrorContains(t, err, "receipts of batch t/a/9")
	require.NoError(t, srv.Start())
	n, err := s.Stored(context.Background(), id)
	require.NoError(t, err, "the next call dials again")
	require.Zero(t, n)

	srv.Stall(0)
	_, err = s.Stored(context.Background(), id)
	require.ErrorContains(t, err, "i/o timeout")
	srv.Release()

	require.NoError(t, s.Close(context.Background()))
	_, err = s.Stored(context.Background(), id)
	require.ErrorIs(t, err, sink.ErrClosed)
}

func TestReceiptOptions(t *testing.T) {
	_, err := riemann.New("127.0.0.1:5555", riemann.WithReceipts(-time.Minute))
	require.EqualError(t, err, "riemann: WithReceipts: negative duration -1m0s")
	_, err = riemann.New("127.0.0.1:5555", riemann.WithReceipts(time.Minute), riemann.WithUDP())
	require.ErrorContains(t, err, "needs TCP")
	_, err = sink.Open(context.Background(), "riemann+udp://127.0.0.1:5555?receipts=1m")
	require.ErrorContains(t, err, "needs TCP")
	_, err = sink.Open(context.Background(), "riemann://127.0.0.1:5555?receipts=soon")
	require.ErrorContains(t, err, "parameter receipts")

	srv := riemanntest.NewServer(t)
	s, err := sink.Open(context.Background(), "riemann://"+srv.Addr()+"?receipts=90s")
	require.NoError(t, err)
	defer s.Close(context.Background())
	w, ok := s.(sink.NamedWriter)
	require.True(t, ok)
	r, ok := s.(sink.ReceiptKeeper)
	require.True(t, ok)
	id := sink.BatchID{Tenant: "t", Agent: "a", Seq: 3}
	require.NoError(t, w.WriteFrom(context.Background(), id, 0, batchOf(2)))
	n, err := r.Stored(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, 2, n)
}

// A receipt lives as long as its ttl in the index; after that the batch is
// unknown again (and would be written again: at least once).
func TestReceiptExpires(t *testing.T) {
	srv := riemanntest.NewServer(t, riemanntest.WithExpiry())
	s := newSink(t, srv.Addr(), riemann.WithReceipts(300*time.Millisecond))
	id := sink.BatchID{Tenant: "t", Agent: "a", Seq: 1}
	ctx := context.Background()
	require.NoError(t, s.WriteFrom(ctx, id, 0, batchOf(3)))
	n, err := s.Stored(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 3, n, "the receipt is dated now, not with the measurements' time")
	time.Sleep(400 * time.Millisecond)
	n, err = s.Stored(ctx, id)
	require.NoError(t, err)
	require.Zero(t, n, "expired")
}
