package levels_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/levels"
	"github.com/meterkit/meter/stage/stagetest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, settings map[string]any) *levels.Levels {
	t.Helper()
	c, err := meter.ConfigFrom(settings)
	require.NoError(t, err)
	s, err := stage.Open("levels", c)
	require.NoError(t, err)
	return s.(*levels.Levels)
}

func cpu(i int, v float64, labels ...meter.Label) meter.Measurement {
	return meter.Measurement{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: v, Time: t0.Add(time.Duration(i) * time.Minute),
		Host: "node1", ResourceID: "cpu0", ProjectID: "p", UserID: "u", Labels: labels}
}

var cpuSettings = map[string]any{"meters": []string{"cpu.util"}, "warning": 80, "alert": 90, "critical": 95, "hysteresis": 5}

// feed gives the values one per batch and returns each value's level label
// and the changes reported, as "from>to".
func feed(t *testing.T, l stage.Stage, values ...float64) (states, changes []string) {
	t.Helper()
	for i, v := range values {
		out, err := l.Process(context.Background(), []meter.Measurement{cpu(i, v)}, nil)
		require.NoError(t, err)
		st, ok := out[0].Label(meter.StateLabel)
		require.True(t, ok)
		states = append(states, st)
		if len(out) == 2 {
			from, _ := out[1].Label(meter.StateChangeFrom)
			to, _ := out[1].Label(meter.StateChangeTo)
			changes = append(changes, from+">"+to)
		}
		require.LessOrEqual(t, len(out), 2)
	}
	return states, changes
}

// Levels worked out by hand: warning 80, alert 90, critical 95, hysteresis 5.
func TestLevelsAboveWithHysteresis(t *testing.T) {
	states, changes := feed(t, open(t, cpuSettings),
		50, // ok, a new series starts at ok: no change
		82, // warning
		91, // alert
		87, // alert still: 87 >= 90-5
		84, // warning: 84 < 85, and 84 >= 80-5
		97, // critical at once
		90, // critical still: 90 >= 95-5
		74, // ok: below every threshold by more than 5
		80, // warning: reaching the threshold is enough
	)
	require.Equal(t, []string{"ok", "warning", "alert", "alert", "warning", "critical", "critical", "ok", "warning"}, states)
	require.Equal(t, []string{"ok>warning", "warning>alert", "alert>warning", "warning>critical", "critical>ok", "ok>warning"}, changes)
}

func TestLevelsBelow(t *testing.T) {
	l := open(t, map[string]any{"meters": []string{"cpu.*"}, "direction": "below", "warning": 20, "critical": 5, "hysteresis": 2})
	states, changes := feed(t, l, 50, 20, 21, 23, 4, 6, 7.5)
	require.Equal(t, []string{"ok", "warning", "warning", "ok", "critical", "critical", "warning"}, states)
	require.Equal(t, []string{"ok>warning", "warning>ok", "ok>critical", "critical>warning"}, changes)

	states, _ = feed(t, open(t, map[string]any{"meters": []string{"cpu.*"}, "critical": 95}), 99, 10)
	require.Equal(t, []string{"critical", "ok"}, states, "a first value past a threshold is a change from ok")
}

func TestLevelsChangeMeasurement(t *testing.T) {
	l := open(t, cpuSettings)
	mode := []meter.Label{{Key: "mode", Value: "x"}, {Key: meter.StateLabel, Value: "stale"}}
	in := []meter.Measurement{cpu(0, 96, mode...), {Name: "memory.used", Kind: meter.Gauge, Unit: "B", Value: 1, Time: t0, Host: "node1"}}
	out, err := l.Process(context.Background(), in, nil)
	require.NoError(t, err)
	require.Len(t, out, 3)
	want := in[0]
	want.Labels = []meter.Label{{Key: "mode", Value: "x"}, {Key: meter.StateLabel, Value: "critical"}}
	require.Equal(t, want, out[0], "the state label replaces the one there")
	require.Equal(t, meter.Measurement{
		Name: "meterkit.state.change", Kind: meter.Gauge, Unit: "", Value: 3, Time: in[0].Time,
		Host: "node1", ResourceID: "cpu0", ProjectID: "p", UserID: "u",
		Labels: []meter.Label{{Key: "meter", Value: "cpu.util"}, {Key: "from", Value: "ok"}, {Key: "to", Value: "critical"}},
	}, out[1])
	require.NoError(t, out[1].Validate())
	require.Equal(t, in[1], out[2], "a meter not selected passes unchanged")
	require.Equal(t, stage.Stats{In: 2, Out: 3, Series: 1}, l.Stats())
	require.Equal(t, "stale", in[0].Labels[1].Value, "the input is untouched")
}

func TestLevelsSeriesAreApart(t *testing.T) {
	l := open(t, cpuSettings)
	a, b := cpu(0, 91), cpu(0, 50)
	b.ResourceID = "cpu1"
	c := cpu(0, 50, meter.Label{Key: "mode", Value: "user"})
	out, err := l.Process(context.Background(), []meter.Measurement{a, b, c}, nil)
	require.NoError(t, err)
	require.Len(t, out, 4)
	for i, want := range []string{"alert", meter.StateChange, "ok", "ok"} {
		if st, ok := out[i].Label(meter.StateLabel); ok {
			require.Equal(t, want, st, i)
		} else {
			require.Equal(t, want, out[i].Name, i)
		}
	}
	require.Equal(t, uint64(3), l.Stats().Series)
}

func TestLevelsCheckpointRestore(t *testing.T) {
	l := open(t, cpuSettings)
	_, changes := feed(t, l, 91)
	require.Equal(t, []string{"ok>alert"}, changes)
	state, err := l.Checkpoint()
	require.NoError(t, err)

	restored := open(t, cpuSettings)
	require.NoError(t, restored.Restore(state))
	again, err := restored.Checkpoint()
	require.NoError(t, err)
	require.JSONEq(t, string(state), string(again))
	states, changes := feed(t, restored, 87, 84)
	require.Equal(t, []string{"alert", "warning"}, states, "the restored series is at alert: 87 keeps it there")
	require.Equal(t, []string{"alert>warning"}, changes)

	fresh := open(t, cpuSettings)
	_, changes = feed(t, fresh, 87)
	require.Equal(t, []string{"ok>warning"}, changes, "without the state, the same value is a different change")

	require.ErrorContains(t, restored.Restore([]byte("nope")), "levels: restore")
	require.ErrorContains(t, restored.Restore([]byte(`{"version": 3}`)), "version 3")
	require.ErrorContains(t, restored.Restore([]byte(`{"version": 2}`)), "version 2 without its table")
	require.ErrorContains(t, restored.Restore([]byte(`{"version": 2, "table": {"version": 1, "series": [{"name": "x", "t": 1, "v": 4}]}}`)),
		`series "x": level 4`)
	require.ErrorContains(t, restored.Restore([]byte(`{"version": 1, "series": [{"name": "x", "level": "panic"}]}`)), `level "panic"`)
	states, _ = feed(t, restored, 87)
	require.Equal(t, []string{"warning"}, states, "a failed restore leaves the state as it was")
}

func TestLevelsMemoryBounds(t *testing.T) {
	l := open(t, map[string]any{"meters": []string{"cpu.util"}, "warning": 80, "max_series": 2, "forget_after": "10m"})
	in := []meter.Measurement{cpu(0, 90), cpu(0, 90), cpu(0, 90)}
	in[1].ResourceID, in[2].ResourceID = "cpu1", "cpu2"
	out, err := l.Process(context.Background(), in, nil)
	require.NoError(t, err)
	require.Len(t, out, 5, "two series labelled, each with its change; the third passes as it was")
	require.Equal(t, in[2], out[4])
	require.Equal(t, stage.Stats{In: 3, Out: 5, Dropped: 1, Series: 2}, l.Stats())

	// 20 minutes later, only cpu2 reports: the others are forgotten.
	late := in[2]
	late.Time = t0.Add(20 * time.Minute)
	_, err = l.Process(context.Background(), []meter.Measurement{late}, nil)
	require.NoError(t, err)
	_, err = l.Process(context.Background(), []meter.Measurement{late}, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(1), l.Stats().Series)
	back := in[0]
	back.Time = late.Time
	out, err = l.Process(context.Background(), []meter.Measurement{back}, nil)
	require.NoError(t, err)
	require.Len(t, out, 2, "a forgotten series starts again at ok")
}

func TestLevelsSettings(t *testing.T) {
	for _, tc := range []struct {
		json, want string
	}{
		{`{"warning": 1}`, "levels: meters: required"},
		{`{"meters": ["x"]}`, "at least one threshold"},
		{`{"meters": ["x"], "warning": 90, "alert": 80}`, "levels: alert (80) must be above warning (90)"},
		{`{"meters": ["x"], "direction": "below", "warning": 10, "critical": 20}`, "levels: critical (20) must be below warning (10)"},
		{`{"meters": ["x"], "direction": "up", "warning": 1}`, `direction: "up"`},
		{`{"meters": ["x"], "warning": 1, "hysteresis": -1}`, "hysteresis: -1"},
		{`{"meters": ["x"], "warning": 1, "max_series": -1}`, "max_series: -1"},
		{`{"meters": ["x"], "warning": 1, "forget_after": "-1s"}`, "forget_after: -1s"},
		{`{"meters": ["x"], "warn": 1}`, `unknown field "warn"`},
	} {
		_, err := stage.Open("levels", meter.ConfigFromJSON([]byte(tc.json)))
		require.ErrorContains(t, err, tc.want, tc.json)
	}
}

func TestLevelsNoAllocationsOnceWarm(t *testing.T) {
	l := open(t, map[string]any{"meters": []string{"cpu.*", "memory.*", "disk.*"}, "warning": 80, "critical": 95})
	batches := stagetest.HostBatches(3, 16, 8)
	out := make([]meter.Measurement, 0, 2*len(batches[0]))
	for _, b := range batches { // warm: every series and level seen
		_, err := l.Process(context.Background(), b, out[:0])
		require.NoError(t, err)
	}
	steady := batches[2]
	_, _ = l.Process(context.Background(), steady, out[:0])
	allocs := testing.AllocsPerRun(20, func() {
		var err error
		if out, err = l.Process(context.Background(), steady, out[:0]); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}

func TestLevelsConformance(t *testing.T) {
	c, err := meter.ConfigFrom(map[string]any{"meters": []string{"cpu.util", "memory.used"}, "warning": 80, "alert": 90, "critical": 95,
		"hysteresis": 5})
	require.NoError(t, err)
	stagetest.Run(t, levels.Open, c, stagetest.HostBatches(5, 2, 1)...)
}

func TestLevelsLeavesMeterkitMetersAlone(t *testing.T) {
	first := open(t, map[string]any{"meters": []string{"cpu.util"}, "warning": 80})
	second := open(t, map[string]any{"meters": []string{"*"}, "warning": 0.5})
	c := stage.Chain(stage.Named("first", first), stage.Named("second", second))
	out, err := c.Process(context.Background(), []meter.Measurement{cpu(0, 90)}, nil)
	require.NoError(t, err)
	require.Len(t, out, 3, "the second stage reports its own change, not one about the first's change")
	require.Equal(t, meter.StateChange, out[1].Name)
	require.Equal(t, 1.0, out[1].Value)
	_, labelled := out[2].Label(meter.StateLabel)
	require.False(t, labelled, "a change measurement gets no state of its own")
	meterName, _ := out[2].Label(meter.StateChangeMeter)
	require.Equal(t, "cpu.util", meterName)
}
