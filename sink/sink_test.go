package sink_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

type failing struct{ err error }

func (f failing) Write(context.Context, []meter.Measurement) error { return f.err }
func (f failing) Close(context.Context) error                      { return nil }

var batch = []meter.Measurement{{Name: "a", Kind: meter.Gauge, Value: 1, Time: time.Unix(1, 0),
	Labels: []meter.Label{{Key: "k", Value: "v"}}}}

func TestPermanent(t *testing.T) {
	require.NoError(t, sink.Permanent(nil))
	base := errors.New("bad sample")
	err := sink.Permanent(base)
	require.True(t, sink.IsPermanent(err))
	require.ErrorIs(t, err, base)
	require.False(t, sink.IsPermanent(errors.Join(errors.New("x"), err)), "a joined retryable error wins")
	require.True(t, sink.IsPermanent(errors.Join(err, sink.Permanent(errors.New("y")))))
	require.True(t, sink.IsPermanent(fmt.Errorf("wrapped: %w", err)))
	require.False(t, sink.IsPermanent(base))
	p := &sink.PartialError{Rejected: []int{0, 2}, Err: base}
	require.False(t, sink.IsPermanent(p))
	require.EqualError(t, p, "sink: 2 measurement(s) rejected: bad sample")
}

func TestFanout(t *testing.T) {
	ctx := context.Background()
	var a, b sink.Recorder
	require.NoError(t, sink.Fanout(&a, &b, sink.Discard).Write(ctx, batch))
	require.Equal(t, batch, a.Measurements())
	require.Equal(t, batch, b.Measurements())

	retry := errors.New("conn refused")
	err := sink.Fanout(&a, failing{retry}, failing{sink.Permanent(errors.New("400"))}).Write(ctx, batch)
	require.ErrorIs(t, err, retry)
	require.False(t, sink.IsPermanent(err), "one retryable failure makes the whole retryable")
	require.Equal(t, 2, a.Len(), "good sinks still get the batch")

	err = sink.Fanout(failing{sink.Permanent(errors.New("400"))}).Write(ctx, batch)
	require.True(t, sink.IsPermanent(err))

	f := sink.Fanout(&a)
	require.NoError(t, f.Close(ctx))
	require.True(t, a.Closed())
	require.Error(t, a.Write(ctx, batch))
}

func TestRecorderCopies(t *testing.T) {
	var r sink.Recorder
	b := []meter.Measurement{{Name: "x", Labels: []meter.Label{{Key: "k", Value: "v"}}}}
	require.NoError(t, r.Write(context.Background(), b))
	b[0].Name = "changed"
	b[0].Labels[0].Value = "changed"
	got := r.Measurements()
	require.Equal(t, "x", got[0].Name)
	require.Equal(t, "v", got[0].Labels[0].Value)
	require.Equal(t, 1, r.Batches())
}

func TestOpenUnknownScheme(t *testing.T) {
	_, err := sink.Open(context.Background(), "nope://user:secret@host/")
	require.ErrorContains(t, err, `unknown scheme "nope"`)
	require.NotContains(t, err.Error(), "secret")
	_, err = sink.Open(context.Background(), "no-scheme")
	require.ErrorContains(t, err, "no scheme")
}

func TestOpenDiscard(t *testing.T) {
	s, err := sink.Open(context.Background(), "discard://")
	require.NoError(t, err)
	require.NoError(t, s.Write(context.Background(), batch))
}

// Open's errors never show a password or a secret query parameter.
func TestOpenErrorsHideSecrets(t *testing.T) {
	_, err := sink.Open(context.Background(), "nosuch://user:hunter2@host:1/?token=abc123&Password=pw99&batch=5")
	require.Error(t, err)
	for _, secret := range []string{"hunter2", "abc123", "pw99"} {
		require.NotContains(t, err.Error(), secret)
	}
	require.Contains(t, err.Error(), "batch=5", "other parameters stay readable")
}
