package aggregate_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/aggregate"
)

func FuzzAggregateRestore(f *testing.F) {
	cfg := aggregate.Config{Meters: stage.MustCompileMeters("cpu.util"), GroupBy: []string{"host", "label:zone"}, Window: meter.Duration(time.Minute)}
	a, err := aggregate.New(cfg)
	require.NoError(f, err)
	m := util("a", 1, 5)
	m.Labels = []meter.Label{{Key: "zone", Value: "z1"}}
	_, err = a.Process(context.Background(), []meter.Measurement{m, util("b", 2, 7)}, nil)
	require.NoError(f, err)
	good, err := a.Checkpoint()
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte(`{"version":1,"clock":5,"windows":[{"start":0,"name":"x","kind":"delta","n":2,"sum":1e308,"min":1,"max":2,"last":1,"last_t":3}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := aggregate.New(cfg)
		require.NoError(t, err)
		before, err := a.Checkpoint()
		require.NoError(t, err)
		if err := a.Restore(b); err != nil {
			after, err := a.Checkpoint()
			require.NoError(t, err)
			require.Equal(t, before, after, "a failed restore changes nothing")
			return
		}
		once, err := a.Checkpoint()
		require.NoError(t, err)
		again, err := aggregate.New(cfg)
		require.NoError(t, err)
		require.NoError(t, again.Restore(once))
		twice, err := again.Checkpoint()
		require.NoError(t, err)
		require.Equal(t, string(once), string(twice))
		// Whatever was restored, closing every window gives only valid measurements.
		out, err := a.Tick(context.Background(), time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC), nil)
		require.NoError(t, err)
		for _, m := range out {
			if m.Time.Year() >= 1970 && m.Time.Year() <= 2261 {
				require.NoError(t, m.Validate())
			}
		}
	})
}
