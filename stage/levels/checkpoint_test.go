package levels_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
)

// The series of testdata/checkpoint-v1.json, as testdata/gen_v1_test.go.txt
// gave them to levels at d3cdf4a: cpu0 ends at critical, cpu1 at alert,
// cpu2 (with a meterkit.state label, not part of its identity) at warning,
// cpu3 at ok, and node2's series at critical.
func v1Batches() [][]meter.Measurement {
	at := func(min int, host, res string, v float64, labels ...meter.Label) meter.Measurement {
		return meter.Measurement{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: v, Time: t0.Add(time.Duration(min) * time.Minute),
			Host: host, ResourceID: res, ProjectID: "p", UserID: "u", Labels: labels}
	}
	user := meter.Label{Key: "mode", Value: "user"}
	zone := []meter.Label{{Key: meter.StateLabel, Value: "ok"}, {Key: "zone", Value: "a"}}
	return [][]meter.Measurement{
		{at(0, "node1", "cpu0", 50, user), at(0, "node1", "cpu1", 60), at(0, "node1", "cpu2", 70, zone...), at(0, "node1", "cpu3", 10)},
		{at(1, "node1", "cpu0", 97, user), at(1, "node1", "cpu1", 91), at(1, "node1", "cpu2", 82, zone...), at(1, "node1", "cpu3", 12)},
		{at(2, "node1", "cpu0", 92, user), at(3, "node2", "", 96)},
	}
}

// next is one more point of each of those series, at minute min, each a
// value that the hysteresis keeps at the series' level (and that a series
// starting at ok takes to a lower level).
func v1Next(min int) []meter.Measurement {
	b := v1Batches()
	next := append(b[1][:4:4], b[2][1])
	for i, v := range []float64{91, 87, 76, 50, 92} {
		next[i].Value, next[i].Time = v, t0.Add(time.Duration(min)*time.Minute)
	}
	return next
}

func levelsOf(t *testing.T, out []meter.Measurement) (states []string, changes int) {
	t.Helper()
	for _, m := range out {
		if m.Name == meter.StateChange {
			changes++
			continue
		}
		st, _ := m.Label(meter.StateLabel)
		states = append(states, st)
	}
	return states, changes
}

// A checkpoint written by levels before it kept its series in a
// series.Table (version 1) restores to the same series and levels.
func TestLevelsRestoresVersion1(t *testing.T) {
	v1, err := os.ReadFile("testdata/checkpoint-v1.json")
	require.NoError(t, err)
	ctx := context.Background()

	restored := open(t, cpuSettings)
	require.NoError(t, restored.Restore(v1))
	require.Equal(t, uint64(5), restored.Stats().Series)

	// The same points given to the stage as it is now leave the same state.
	fed := open(t, cpuSettings)
	for _, b := range v1Batches() {
		_, err := fed.Process(ctx, b, nil)
		require.NoError(t, err)
	}
	want, err := fed.Checkpoint()
	require.NoError(t, err)
	got, err := restored.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))

	out, err := restored.Process(ctx, v1Next(4), nil)
	require.NoError(t, err)
	states, changes := levelsOf(t, out)
	require.Equal(t, []string{"critical", "alert", "warning", "ok", "critical"}, states, "each level held by the hysteresis")
	require.Zero(t, changes)

	out, err = open(t, cpuSettings).Process(ctx, v1Next(4), nil)
	require.NoError(t, err)
	states, changes = levelsOf(t, out)
	require.Equal(t, []string{"alert", "warning", "ok", "ok", "alert"}, states, "without the checkpoint, other levels")
	require.Equal(t, 3, changes)
}

// The times seen come over too: an hour after cpu1, cpu2 and cpu3 were last
// seen (minute 1), they are forgotten, and cpu0 (minute 2) is not.
func TestLevelsRestoresVersion1Times(t *testing.T) {
	v1, err := os.ReadFile("testdata/checkpoint-v1.json")
	require.NoError(t, err)
	l := open(t, cpuSettings)
	require.NoError(t, l.Restore(v1))
	late := v1Next(62)[4:] // node2's series only
	_, err = l.Process(context.Background(), late, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(2), l.Stats().Series)
}

// A version 1 checkpoint's garbage fails, and leaves the stage as it was.
// A series given twice, or without a name, which levels at d3cdf4a never
// wrote, fails too (that code took the last of two, and an empty name).
func TestLevelsRestoreVersion1Errors(t *testing.T) {
	v1, err := os.ReadFile("testdata/checkpoint-v1.json")
	require.NoError(t, err)
	l := open(t, cpuSettings)
	require.NoError(t, l.Restore(v1))
	before, err := l.Checkpoint()
	require.NoError(t, err)
	for _, tc := range []struct{ json, want string }{
		{`{"version": 1, "series": [{"name": "x", "level": "stale", "seen": 1}]}`, `levels: restore: series 0 (x): level "stale"`},
		{`{"version": 1, "series": [{"name": "x", "level": "ok", "seen": 1}, {"name": "x", "level": "ok", "seen": 2}]}`, "given twice"},
		{`{"version": 1, "series": [{"level": "ok", "seen": 1}]}`, "no name"},
		{`{"version": 1, "series": [{"name": "x", "level": "ok", "seen": "soon"}]}`, "levels: restore"},
	} {
		require.ErrorContains(t, l.Restore([]byte(tc.json)), tc.want, tc.json)
		after, err := l.Checkpoint()
		require.NoError(t, err)
		require.Equal(t, string(before), string(after), tc.json)
	}
}
