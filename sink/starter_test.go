package sink_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// startSink is a Recorder with a Start that counts, or fails.
type startSink struct {
	sink.Recorder
	starts int
	err    error
}

func (s *startSink) Start(context.Context) error {
	s.starts++
	return s.err
}

// hidden wraps a sink without Unwrap: what it wraps is not found.
type hidden struct{ sink.Sink }

func TestStarterFoundThroughWrap(t *testing.T) {
	s := &startSink{}
	w := sink.Wrap(s, func(ctx context.Context, b []meter.Measurement, next sink.WriteFunc) error { return next(ctx, b) })
	st, ok := sink.As[sink.Starter](w)
	require.True(t, ok, "a read-only capability: found below Wrap")
	require.NoError(t, st.Start(t.Context()))
	require.Equal(t, 1, s.starts)
	_, ok = sink.As[sink.Starter](hidden{s})
	require.False(t, ok, "not below a wrapper without Unwrap")
}

func TestFanoutStartsItsStarters(t *testing.T) {
	a, b := &startSink{}, &startSink{}
	f := sink.Fanout(a, sink.NewDiscard(), sink.Wrap(b, func(ctx context.Context, m []meter.Measurement, next sink.WriteFunc) error {
		return next(ctx, m)
	}))
	st, ok := f.(sink.Starter)
	require.True(t, ok)
	require.NoError(t, st.Start(t.Context()))
	require.Equal(t, []int{1, 1}, []int{a.starts, b.starts})

	boom := errors.New("port taken")
	c := &startSink{err: boom}
	f = sink.Fanout(c, a)
	err := f.(sink.Starter).Start(t.Context())
	require.ErrorIs(t, err, boom)
	require.Equal(t, 1, a.starts, "stops at the first that fails")

	require.NoError(t, f.Close(t.Context()))
	require.ErrorIs(t, f.(sink.Starter).Start(t.Context()), sink.ErrClosed)
}
