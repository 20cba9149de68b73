package levels_test

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage/levels"
)

// In place, levels inserts each change right after the measurement that made
// it, as Process appends it, however many there are in a batch and whether
// or not the batch has room to grow.
func TestLevelsInPlaceInsertsChanges(t *testing.T) {
	shared := []meter.Label{{Key: "mode", Value: "user"}}
	values := [][]float64{{10, 85, 20, 99, 96, 50}, {50, 91, 92, 80}, {10, 10, 10}}
	b := open(t, cpuSettings)                          // Process
	a, c := open(t, cpuSettings), open(t, cpuSettings) // in place: no room to grow, room
	for n, vs := range values {
		var batch []meter.Measurement
		for i, v := range vs {
			other := cpu(i, v, shared...)
			other.Name = "memory.used"
			batch = append(batch, cpu(i, v, shared...), other)
		}
		want, err := b.Process(context.Background(), batch, nil)
		require.NoError(t, err)
		for extra, s := range map[int]*levels.Levels{0: a, 64: c} {
			ms := append(make([]meter.Measurement, 0, len(batch)+extra), batch...)
			got, err := s.ProcessInPlace(context.Background(), ms)
			require.NoError(t, err)
			require.Equal(t, want, got, "batch %d, room for %d more", n+1, extra)
		}
		require.Equal(t, []meter.Label{{Key: "mode", Value: "user"}}, shared, "a label slice of the input changed")
		require.Greater(t, len(want), len(batch), "batch %d should report changes", n+1)
		require.True(t, slices.ContainsFunc(want, func(m meter.Measurement) bool { return m.Name == meter.StateChange }))
	}
	require.Equal(t, b.Stats(), a.Stats())
	require.Equal(t, b.Stats(), c.Stats())
}
