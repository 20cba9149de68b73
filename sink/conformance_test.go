package sink_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/sinktest"
)

func TestRecorderConformance(t *testing.T) {
	var r *sink.Recorder
	sinktest.Run(t, sinktest.Harness{
		New:     func(*testing.T) sink.Sink { r = &sink.Recorder{}; return r },
		Read:    func(*testing.T) []meter.Measurement { return r.Measurements() },
		Ordered: true,
	})
}

func TestFanoutConformance(t *testing.T) {
	var a, b *sink.Recorder
	sinktest.Run(t, sinktest.Harness{
		New: func(*testing.T) sink.Sink {
			a, b = &sink.Recorder{}, &sink.Recorder{}
			return sink.Fanout(a, b)
		},
		Read: func(t *testing.T) []meter.Measurement {
			require.Equal(t, a.Measurements(), b.Measurements(), "the two sinks of the fanout hold different things")
			return a.Measurements()
		},
		Ordered: true,
	})
}

func TestDiscardConformance(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{New: func(*testing.T) sink.Sink { return sink.NewDiscard() }})
}

func TestSharedDiscardOutlivesClose(t *testing.T) {
	ctx := context.Background()
	require.NoError(t, sink.Discard.Close(ctx))
	require.NoError(t, sink.Discard.Write(ctx, batch), "Discard is shared: one user's Close must not break the others")
	d := sink.NewDiscard()
	require.NoError(t, d.Write(ctx, batch))
	require.NoError(t, d.Close(ctx))
	require.ErrorIs(t, d.Write(ctx, batch), sink.ErrClosed)
}

func TestFanoutClosesOnce(t *testing.T) {
	ctx := context.Background()
	var a sink.Recorder
	f := sink.Fanout(&a)
	require.NoError(t, f.Close(ctx))
	require.NoError(t, f.Close(ctx))
	err := f.Write(ctx, batch)
	require.ErrorIs(t, err, sink.ErrClosed)
	require.EqualError(t, err, "sink: fanout: write after Close: sink: closed")
	require.ErrorIs(t, a.Write(ctx, batch), sink.ErrClosed)
}
