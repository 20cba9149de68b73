package synthetic_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/driver/drivertest"
	"github.com/meterkit/meter/driver/synthetic"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, synthetic.New, driver.Config{})
}

func TestNumbersAndLimit(t *testing.T) {
	cfg, err := driver.ConfigFrom(synthetic.Config{PerCollection: 4, Limit: 10, Run: "r1"})
	require.NoError(t, err)
	d, err := synthetic.New(cfg)
	require.NoError(t, err)
	var got []float64
	for range 4 {
		ms, err := d.Collect(context.Background())
		require.NoError(t, err)
		for _, m := range ms {
			got = append(got, m.Value)
			v, _ := m.Label("run")
			require.Equal(t, "r1", v)
		}
	}
	require.Equal(t, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, got)
	require.Equal(t, uint64(10), d.(*synthetic.Driver).Produced())

	_, err = synthetic.New(driver.ConfigFromJSON([]byte(`{"per_collection": 0}`)))
	require.ErrorContains(t, err, "per_collection")
}

func TestCumulativeConformance(t *testing.T) {
	drivertest.Run(t, synthetic.New, driver.ConfigFromJSON([]byte(`{"slope": 2.5, "unit": "B", "per_collection": 3}`)))
}

func TestCumulativeSlopeTimesWallClock(t *testing.T) {
	cfg := driver.ConfigFromJSON([]byte(`{"slope": 2.5, "unit": "B", "per_collection": 3, "run": "r1"}`))
	d, err := synthetic.New(cfg)
	require.NoError(t, err)
	before := time.Now()
	first, err := d.Collect(context.Background())
	require.NoError(t, err)
	require.Len(t, first, 3)
	for _, m := range first {
		require.Equal(t, "synthetic.counter", m.Name)
		require.Equal(t, meter.Cumulative, m.Kind)
		require.Equal(t, "B", m.Unit)
		require.False(t, m.Time.Before(before))
		require.InDelta(t, 2.5*float64(m.Time.UnixNano())/1e9, m.Value, 1e-6, "slope x the measurement's own time")
	}
	time.Sleep(20 * time.Millisecond)
	// A restarted agent: a new driver goes on from where the time is.
	d2, err := synthetic.New(cfg)
	require.NoError(t, err)
	second, err := d2.Collect(context.Background())
	require.NoError(t, err)
	dt := second[0].Time.Sub(first[0].Time).Seconds()
	require.GreaterOrEqual(t, dt, 0.02)
	require.InEpsilon(t, 2.5, (second[0].Value-first[0].Value)/dt, 1e-4, "the rate is the slope across a restart")

	_, err = synthetic.New(driver.ConfigFromJSON([]byte(`{"slope": 1e308}`)))
	require.ErrorContains(t, err, "slope")
}
