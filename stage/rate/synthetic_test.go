package rate_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/driver/synthetic"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/rate"
)

// The synthetic driver's cumulative mode grows by its slope per second of
// wall-clock time: its rate is the slope, across a restart of the driver
// with the stage's state carried over by a checkpoint.
func TestRateOverSyntheticCumulative(t *testing.T) {
	cfg := driver.ConfigFromJSON([]byte(`{"slope": 1e9, "unit": "ns", "per_collection": 2, "run": "fixed"}`))
	collect := func() []meter.Measurement {
		d, err := synthetic.New(cfg) // a new driver each time, as after an agent restart
		require.NoError(t, err)
		ms, err := d.Collect(context.Background())
		require.NoError(t, err)
		return ms
	}
	settings := map[string]any{"meters": []string{"synthetic.counter"}, "as": "busy", "percent_of": 2}
	r := open(t, settings)
	out, err := r.Process(context.Background(), collect(), nil)
	require.NoError(t, err)
	require.Len(t, out, 2, "first points: no rate")
	state, err := r.Checkpoint()
	require.NoError(t, err)

	time.Sleep(50 * time.Millisecond)
	restarted, err := rate.New(rate.Config{Meters: stage.MustCompileMeters("synthetic.counter"), As: "busy", PercentOf: rate.PercentOf{N: 2}})
	require.NoError(t, err)
	require.NoError(t, restarted.Restore(state))
	out, err = restarted.Process(context.Background(), collect(), nil)
	require.NoError(t, err)
	require.Len(t, out, 4)
	for _, m := range []meter.Measurement{out[1], out[3]} {
		require.Equal(t, "busy", m.Name)
		require.Equal(t, "%", m.Unit)
		// 1e9 ns per second is one busy second per second: 50 % of 2.
		require.InEpsilon(t, 50, m.Value, 1e-3)
	}
}
