package synthetic_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

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
