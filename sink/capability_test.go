package sink_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// store is a sink whose capabilities the test chooses: it records every
// call, and keeps receipts (how far each named batch is held) in memory.
type store struct {
	sink.Recorder
	calls []string
	held  map[sink.BatchID]int
}

func newStore() *store { return &store{held: map[sink.BatchID]int{}} }

func (s *store) Write(ctx context.Context, b []meter.Measurement) error {
	s.calls = append(s.calls, fmt.Sprintf("Write %d", len(b)))
	return s.Recorder.Write(ctx, b)
}

func (s *store) writeFrom(ctx context.Context, id sink.BatchID, from int, b []meter.Measurement) error {
	s.calls = append(s.calls, fmt.Sprintf("WriteFrom %s %d %d", id, from, len(b)))
	if err := s.Recorder.Write(ctx, b); err != nil {
		return err
	}
	s.held[id] = from + len(b)
	return nil
}

func (s *store) stored(_ context.Context, id sink.BatchID) (int, error) {
	s.calls = append(s.calls, "Stored "+id.String())
	return s.held[id], nil
}

func (s *store) flush(context.Context) error {
	s.calls = append(s.calls, "Flush")
	return nil
}

// The combinations a sink can have; receipts come with the named write.
type (
	plain          struct{ *store }
	flushing       struct{ *store }
	named          struct{ *store }
	namedFlushing  struct{ *store }
	receipted      struct{ *store }
	receiptedFlush struct{ *store }
	receiptsOnly   struct{ *store } // Stored without the named write that leaves receipts
)

func (s flushing) Flush(ctx context.Context) error { return s.flush(ctx) }
func (s named) WriteFrom(ctx context.Context, id sink.BatchID, from int, b []meter.Measurement) error {
	return s.writeFrom(ctx, id, from, b)
}
func (s namedFlushing) WriteFrom(ctx context.Context, id sink.BatchID, from int, b []meter.Measurement) error {
	return s.writeFrom(ctx, id, from, b)
}
func (s namedFlushing) Flush(ctx context.Context) error { return s.flush(ctx) }
func (s receipted) WriteFrom(ctx context.Context, id sink.BatchID, from int, b []meter.Measurement) error {
	return s.writeFrom(ctx, id, from, b)
}
func (s receipted) Stored(ctx context.Context, id sink.BatchID) (int, error) {
	return s.stored(ctx, id)
}
func (s receiptedFlush) WriteFrom(ctx context.Context, id sink.BatchID, from int, b []meter.Measurement) error {
	return s.writeFrom(ctx, id, from, b)
}
func (s receiptedFlush) Stored(ctx context.Context, id sink.BatchID) (int, error) {
	return s.stored(ctx, id)
}
func (s receiptedFlush) Flush(ctx context.Context) error { return s.flush(ctx) }
func (s receiptsOnly) Stored(ctx context.Context, id sink.BatchID) (int, error) {
	return s.stored(ctx, id)
}

type caps struct{ named, receipts, flush bool }

func capsOf(s sink.Sink) caps {
	_, n := s.(sink.NamedWriter)
	_, r := s.(sink.ReceiptKeeper)
	_, f := s.(sink.Flusher)
	return caps{n, r, f}
}

func TestWrapKeepsExactlyTheInnerCapabilitiesThroughTheWrapper(t *testing.T) {
	id := sink.BatchID{Tenant: "t", Agent: "a", Seq: 9}
	for _, tc := range []struct {
		name  string
		inner func(*store) sink.Sink
		want  caps
	}{
		{"plain", func(s *store) sink.Sink { return plain{s} }, caps{}},
		{"flushing", func(s *store) sink.Sink { return flushing{s} }, caps{flush: true}},
		{"named", func(s *store) sink.Sink { return named{s} }, caps{named: true}},
		{"named flushing", func(s *store) sink.Sink { return namedFlushing{s} }, caps{named: true, flush: true}},
		{"receipts", func(s *store) sink.Sink { return receipted{s} }, caps{true, true, false}},
		{"receipts flushing", func(s *store) sink.Sink { return receiptedFlush{s} }, caps{true, true, true}},
		{"receipts without named write", func(s *store) sink.Sink { return receiptsOnly{s} }, caps{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore()
			inner := tc.inner(st)
			var seen []int
			w := sink.Wrap(inner, func(ctx context.Context, b []meter.Measurement, next sink.WriteFunc) error {
				seen = append(seen, len(b))
				return next(ctx, b)
			})
			require.Equal(t, tc.want, capsOf(w))
			require.Equal(t, inner, sink.Unwrap(w))

			ctx := context.Background()
			require.NoError(t, w.Write(ctx, batchOf(2)))
			want := []string{"Write 2"}
			if tc.want.named {
				require.NoError(t, w.(sink.NamedWriter).WriteFrom(ctx, id, 4, batchOf(3)))
				want = append(want, "WriteFrom t/a/9 4 3")
				require.Equal(t, []int{2, 3}, seen, "a named write goes through the wrapper too")
			}
			if tc.want.receipts {
				n, err := w.(sink.ReceiptKeeper).Stored(ctx, id)
				require.NoError(t, err)
				require.Equal(t, 7, n)
				want = append(want, "Stored t/a/9")
			}
			if tc.want.flush {
				require.NoError(t, w.(sink.Flusher).Flush(ctx))
				want = append(want, "Flush")
			}
			require.Equal(t, want, st.calls)
			require.NoError(t, w.Close(ctx))
			require.True(t, st.Closed(), "Close closes inner")
		})
	}
}

func TestWrapRefusesANamedBatchOfAnotherLength(t *testing.T) {
	st := newStore()
	w := sink.Wrap(receipted{st}, func(ctx context.Context, b []meter.Measurement, next sink.WriteFunc) error {
		return next(ctx, b[1:]) // drops one: positions would be off
	})
	err := w.(sink.NamedWriter).WriteFrom(context.Background(), sink.BatchID{Agent: "a", Seq: 1}, 0, batchOf(3))
	require.Error(t, err)
	require.True(t, sink.IsPermanent(err))
	require.ErrorContains(t, err, "2 measurements for 3")
	require.Zero(t, st.Len(), "nothing reached the store")
	require.NoError(t, w.Write(context.Background(), batchOf(3)), "an unnamed batch carries no positions")
	require.Equal(t, 2, st.Len())
}

// stats is a read-only capability.
type stats interface{ Calls() int }

func (s *store) Calls() int { return len(s.calls) }

// handWrapper is a user's wrapper written without Wrap, with Unwrap.
type handWrapper struct{ inner sink.Sink }

func (h handWrapper) Write(ctx context.Context, b []meter.Measurement) error {
	return h.inner.Write(ctx, b)
}
func (h handWrapper) Close(ctx context.Context) error { return h.inner.Close(ctx) }
func (h handWrapper) Unwrap() sink.Sink               { return h.inner }

func TestAsFindsReadOnlyCapabilitiesBelowWrappersOnly(t *testing.T) {
	st := newStore()
	inner := receiptedFlush{st}
	logged := sink.Wrap(inner, func(ctx context.Context, b []meter.Measurement, next sink.WriteFunc) error {
		return next(ctx, b)
	})
	hand := handWrapper{logged}

	s, ok := sink.As[stats](hand)
	require.True(t, ok, "found through two wrappers")
	require.Equal(t, 0, s.Calls())

	// The capabilities that change the store are hand's own or none.
	_, ok = sink.As[sink.NamedWriter](hand)
	require.False(t, ok)
	_, ok = sink.As[sink.ReceiptKeeper](hand)
	require.False(t, ok)
	_, ok = sink.As[sink.Flusher](hand)
	require.False(t, ok)
	_, ok = sink.As[sink.NamedWriter](logged)
	require.True(t, ok, "Wrap offers it itself")

	_, ok = sink.As[stats](sink.Discard)
	require.False(t, ok)
	require.Nil(t, sink.Unwrap(sink.Discard))
	_, ok = sink.As[stats](sink.Fanout(st))
	require.False(t, ok, "Fanout has no Unwrap")
}

func TestFanoutOffersACapabilityOnlyWhereItsChildrenAllow(t *testing.T) {
	a, b := newStore(), newStore()
	for _, tc := range []struct {
		name     string
		children []sink.Sink
		want     caps
	}{
		{"plain", []sink.Sink{plain{a}, plain{b}}, caps{}},
		{"all named", []sink.Sink{named{a}, receipted{b}}, caps{named: true}},
		{"one not named", []sink.Sink{named{a}, plain{b}}, caps{}},
		{"all receipts: still none", []sink.Sink{receipted{a}, receipted{b}}, caps{named: true}},
		{"one flushes", []sink.Sink{plain{a}, flushing{b}}, caps{flush: true}},
		{"named, one flushes", []sink.Sink{named{a}, namedFlushing{b}}, caps{named: true, flush: true}},
		{"no child", nil, caps{named: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, capsOf(sink.Fanout(tc.children...)))
		})
	}

	a, b = newStore(), newStore()
	f := sink.Fanout(named{a}, namedFlushing{b})
	id := sink.BatchID{Agent: "x", Seq: 2}
	require.NoError(t, f.(sink.NamedWriter).WriteFrom(context.Background(), id, 1, batchOf(2)))
	require.NoError(t, f.(sink.Flusher).Flush(context.Background()))
	require.Equal(t, []string{"WriteFrom /x/2 1 2"}, a.calls)
	require.Equal(t, []string{"WriteFrom /x/2 1 2", "Flush"}, b.calls)
}

func batchOf(n int) []meter.Measurement {
	b := make([]meter.Measurement, n)
	for i := range b {
		b[i] = batch[0]
		b[i].Value = float64(i)
	}
	return b
}
