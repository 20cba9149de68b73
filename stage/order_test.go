package stage_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

// ordered is an order-sensitive stage that adds 1 to every value.
type ordered struct{ seen int }

func (o *ordered) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	o.seen++
	for _, m := range in {
		m.Value++
		out = append(out, m)
	}
	return out, nil
}

func (o *ordered) OrderSensitive() bool { return true }

// A batch marked out of order passes a chain's order-sensitive stages
// unchanged, in a nested chain too, and goes through the others; a batch in
// order goes through all.
func TestChainSkipsOrderSensitiveStagesOutOfOrder(t *testing.T) {
	double := stage.Func(func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
		for _, m := range in {
			m.Value *= 2
			out = append(out, m)
		}
		return out, nil
	})
	a, b := &ordered{}, &ordered{}
	inner := stage.Chain(stage.Named("b", b), double)
	c := stage.Chain(double, stage.Named("a", a), double, inner)
	require.True(t, stage.IsOrderSensitive(c))
	require.True(t, stage.IsOrderSensitive(inner))
	require.False(t, stage.IsOrderSensitive(stage.Chain(double)))
	in := []meter.Measurement{{Name: "x", Kind: meter.Gauge, Value: 1}}

	ctx := stage.WithOrigin(context.Background(), stage.Origin{Agent: "a1", Seq: 2})
	out, err := c.Process(ctx, in, nil)
	require.NoError(t, err)
	require.Equal(t, 14.0, out[0].Value, "(1*2+1)*2+1, *2")

	ctx = stage.WithOrigin(context.Background(), stage.Origin{Agent: "a1", Seq: 1, OutOfOrder: true})
	out, err = c.Process(ctx, in, nil)
	require.NoError(t, err)
	require.Equal(t, 8.0, out[0].Value, "1*2*2*2: both order-sensitive stages skipped")
	require.Equal(t, 1, a.seen)
	require.Equal(t, 1, b.seen)
	require.Equal(t, 1.0, in[0].Value)
}
