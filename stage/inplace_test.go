package stage_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

// scale multiplies values by f; in place too.
type scale float64

func (f scale) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	for _, m := range in {
		m.Value *= float64(f)
		out = append(out, m)
	}
	return out, nil
}

func (f scale) ProcessInPlace(_ context.Context, ms []meter.Measurement) ([]meter.Measurement, error) {
	for i := range ms {
		ms[i].Value *= float64(f)
	}
	return ms, nil
}

// dropOdd drops odd values; in place too.
type dropOdd struct{}

func (dropOdd) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	for _, m := range in {
		if int(m.Value)%2 == 0 {
			out = append(out, m)
		}
	}
	return out, nil
}

func (dropOdd) ProcessInPlace(_ context.Context, ms []meter.Measurement) ([]meter.Measurement, error) {
	k := 0
	for _, m := range ms {
		if int(m.Value)%2 == 0 {
			ms[k] = m
			k++
		}
	}
	return ms[:k], nil
}

// echo appends, after each measurement, a copy named echo; in place too,
// growing the slice (as levels does when it reports a change).
type echo struct{}

func (echo) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	for _, m := range in {
		out = append(out, m, m)
		out[len(out)-1].Name = "echo"
	}
	return out, nil
}

func (echo) ProcessInPlace(ctx context.Context, ms []meter.Measurement) ([]meter.Measurement, error) {
	rest := append([]meter.Measurement(nil), ms...)
	return echo{}.Process(ctx, rest, ms[:0])
}

func TestChainInPlaceMatchesProcessInEveryOrder(t *testing.T) {
	kinds := map[string]stage.Stage{"scale": scale(3), "drop": dropOdd{}, "echo": echo{}, "add": add(1)}
	names := []string{"scale", "drop", "echo", "add"}
	var orders [][]string
	var gen func(prefix []string)
	gen = func(prefix []string) {
		if len(prefix) > 0 {
			orders = append(orders, append([]string(nil), prefix...))
		}
		if len(prefix) == 4 {
			return
		}
		for _, n := range names {
			gen(append(prefix, n))
		}
	}
	gen(nil)
	in := make([]meter.Measurement, 7)
	for i := range in {
		in[i] = gauge("m", float64(i))
	}
	before := append([]meter.Measurement(nil), in...)
	for _, order := range orders {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			var ss []stage.Stage
			for _, n := range order {
				ss = append(ss, stage.Named(n, kinds[n]))
			}
			// What the stages make one after the other.
			want := in
			for _, s := range ss {
				var err error
				want, err = s.Process(context.Background(), want, nil)
				require.NoError(t, err)
			}
			c := stage.Chain(ss...)
			for range 2 { // the second time with the buffers warm
				prefix := gauge("prefix", 99)
				out, err := c.Process(context.Background(), in, []meter.Measurement{prefix})
				require.NoError(t, err)
				require.Equal(t, before, in, "Process changed its input")
				require.Equal(t, append([]meter.Measurement{prefix}, want...), out)

				for _, extra := range []int{0, 1, 20} { // capacity to grow into, or not
					ms := append(make([]meter.Measurement, 0, len(in)+extra), in...)
					got, err := c.(stage.InPlacer).ProcessInPlace(context.Background(), ms)
					require.NoError(t, err)
					if len(want) == 0 {
						require.Empty(t, got)
					} else {
						require.Equal(t, want, got)
					}
				}
			}
			st := c.(stage.StatsReporter).Stats()
			require.Equal(t, uint64(8*len(in)), st.In)
			require.Equal(t, uint64(8*len(want)), st.Out)
		})
	}
}

func TestChainInPlaceError(t *testing.T) {
	boom := errors.New("boom")
	c := stage.Chain(scale(2), stage.Named("broken", stage.Func(func(context.Context, []meter.Measurement, []meter.Measurement) ([]meter.Measurement, error) {
		return nil, boom
	})))
	got, err := c.(stage.InPlacer).ProcessInPlace(context.Background(), []meter.Measurement{gauge("a", 1)})
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "broken")
	require.Empty(t, got)
}

func TestNamedForwardsInPlaceOnlyWhenItIsOne(t *testing.T) {
	_, ok := stage.Named("s", scale(2)).(stage.InPlacer)
	require.True(t, ok)
	_, ok = stage.Named("a", add(1)).(stage.InPlacer)
	require.False(t, ok)
	require.True(t, reflect.TypeOf(stage.Only(stage.MustCompileMeters("x"), scale(2))).Implements(reflect.TypeFor[stage.Stage]()))
	_, ok = stage.Only(stage.MustCompileMeters("x"), scale(2)).(stage.InPlacer)
	require.False(t, ok, "Only changes what its stage does: it must not pass ProcessInPlace on")
}
