package unit_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/stagetest"
	"github.com/meterkit/meter/stage/unit"
)

func open(t *testing.T, settings map[string]any) stage.Stage {
	t.Helper()
	c, err := meter.ConfigFrom(settings)
	require.NoError(t, err)
	s, err := stage.Open("unit", c)
	require.NoError(t, err)
	return s
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func m(name string, kind meter.Kind, unit string, v float64) meter.Measurement {
	return meter.Measurement{Name: name, Kind: kind, Unit: unit, Value: v, Time: t0, Host: "h"}
}

// Values computed by hand.
func TestUnitHandComputed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings map[string]any
		in, want meter.Measurement
	}{
		{"B to MiB", map[string]any{"from": "B", "to": "MiB"},
			m("memory.used", meter.Gauge, "B", 3*1024*1024+512*1024), m("memory.used", meter.Gauge, "MiB", 3.5)},
		{"B to GiB", map[string]any{"from": "B", "to": "GiB"},
			m("memory.total", meter.Gauge, "B", 17179869184), m("memory.total", meter.Gauge, "GiB", 16)},
		{"ns to s", map[string]any{"from": "ns", "to": "s"},
			m("cpu", meter.Cumulative, "ns", 1.5e9), m("cpu", meter.Cumulative, "s", 1.5)},
		{"s to ms", map[string]any{"from": "s", "to": "ms"},
			m("disk.io.time", meter.Cumulative, "s", 0.25), m("disk.io.time", meter.Cumulative, "ms", 250)},
		{"kB to B", map[string]any{"from": "kB", "to": "B"},
			m("x", meter.Gauge, "kB", 2.5), m("x", meter.Gauge, "B", 2500)},
		{"B/s to Mbit/s", map[string]any{"from": "B/s", "to": "Mbit/s"},
			m("net.rx", meter.Gauge, "B/s", 250000), m("net.rx", meter.Gauge, "Mbit/s", 2)},
		{"min to h", map[string]any{"from": "min", "to": "h"},
			m("up", meter.Gauge, "min", 90), m("up", meter.Gauge, "h", 1.5)},
		{"Cel to degF", map[string]any{"from": "Cel", "to": "degF", "factor": 1.8, "offset": 32},
			m("thermal.temperature", meter.Gauge, "Cel", 100), m("thermal.temperature", meter.Gauge, "degF", 212)},
		{"Cel to degF, delta: no offset", map[string]any{"from": "Cel", "to": "degF", "factor": 1.8, "offset": 32},
			m("thermal.change", meter.Delta, "Cel", 10), m("thermal.change", meter.Delta, "degF", 18)},
		{"factor wins over the known one", map[string]any{"from": "B", "to": "MiB", "factor": 0.5},
			m("x", meter.Gauge, "B", 8), m("x", meter.Gauge, "MiB", 4)},
		{"factor, any unit", map[string]any{"factor": 100, "to": "%"},
			m("ratio", meter.Gauge, "", 0.42), m("ratio", meter.Gauge, "%", 42)},
		{"rename only", map[string]any{"rename": map[string]string{"cpu_util": "cpu.util"}},
			m("cpu_util", meter.Gauge, "%", 7), m("cpu.util", meter.Gauge, "%", 7)},
		{"convert and rename", map[string]any{"from": "B", "to": "KiB", "rename": map[string]string{"memory": "memory.kib"}},
			m("memory", meter.Gauge, "B", 2048), m("memory.kib", meter.Gauge, "KiB", 2)},
		{"another unit passes", map[string]any{"from": "B", "to": "MiB"},
			m("cpu.util", meter.Gauge, "%", 50), m("cpu.util", meter.Gauge, "%", 50)},
		{"another meter passes", map[string]any{"meters": []string{"memory.*"}, "from": "B", "to": "MiB"},
			m("disk.read.bytes", meter.Cumulative, "B", 1024), m("disk.read.bytes", meter.Cumulative, "B", 1024)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := open(t, tc.settings).Process(context.Background(), []meter.Measurement{tc.in}, nil)
			require.NoError(t, err)
			require.Len(t, out, 1)
			require.InDelta(t, tc.want.Value, out[0].Value, 1e-9)
			out[0].Value = tc.want.Value
			require.Equal(t, tc.want, out[0])
		})
	}
}

func TestUnitKeepsOrderLabelsAndCounts(t *testing.T) {
	s := open(t, map[string]any{"meters": []string{"disk.*", "memory.*"}, "from": "B", "to": "MiB"})
	in := stagetest.Sample()[0]
	out, err := s.Process(context.Background(), in, nil)
	require.NoError(t, err)
	require.Len(t, out, len(in))
	for i := range in {
		require.Equal(t, in[i].Name, out[i].Name)
		if in[i].Unit == "B" {
			require.Equal(t, "MiB", out[i].Unit)
			require.Equal(t, in[i].Value/(1<<20), out[i].Value)
		} else {
			require.Equal(t, in[i], out[i])
		}
		if len(in[i].Labels) > 0 {
			require.Same(t, &in[i].Labels[0], &out[i].Labels[0])
		}
	}

	huge := open(t, map[string]any{"factor": 1e300})
	out, err = huge.Process(context.Background(), []meter.Measurement{m("x", meter.Gauge, "", 1e300), m("y", meter.Gauge, "", 2)}, nil)
	require.NoError(t, err)
	require.Len(t, out, 1, "a value that overflows is dropped")
	require.Equal(t, 2e300, out[0].Value)
	require.Equal(t, stage.Stats{In: 2, Out: 1, Dropped: 1}, huge.(stage.StatsReporter).Stats())
}

func TestUnitSettings(t *testing.T) {
	for _, tc := range []struct {
		json, want string
	}{
		{`{}`, "unit: nothing to do"},
		{`{"to": "MiB"}`, `unit: to "MiB" without from`},
		{`{"from": "B", "to": "s"}`, `unit: no known factor from "B" to "s"`},
		{`{"from": "B/s", "to": "MiB/min"}`, `no known factor`},
		{`{"factor": 0}`, "unit: factor: 0"},
		{`{"rename": {"a": ""}}`, `unit: rename "a"`},
		{`{"form": "B"}`, `unknown field "form"`},
	} {
		_, err := stage.Open("unit", meter.ConfigFromJSON([]byte(tc.json)))
		require.ErrorContains(t, err, tc.want, tc.json)
	}
	f, ok := unit.Factor("GiB", "MiB")
	require.True(t, ok)
	require.Equal(t, 1024.0, f)
	f, ok = unit.Factor("µs", "ns")
	require.True(t, ok)
	require.InDelta(t, 1000, f, 1e-9)
	_, ok = unit.Factor("B", "furlong")
	require.False(t, ok)
	require.False(t, math.IsNaN(f))
}

func TestUnitConformance(t *testing.T) {
	c, err := meter.ConfigFrom(map[string]any{"meters": []string{"memory.*", "disk.*"}, "from": "B", "to": "MiB",
		"rename": map[string]string{"memory.used": "memory.usage"}})
	require.NoError(t, err)
	stagetest.Run(t, unit.Open, c)
}

func TestUnitLeavesMeterkitMetersAlone(t *testing.T) {
	s := open(t, map[string]any{"factor": 100, "to": "%"})
	change := m(meter.StateChange, meter.Gauge, "", 2)
	out, err := s.Process(context.Background(), []meter.Measurement{change, m("ratio", meter.Gauge, "", 0.5)}, nil)
	require.NoError(t, err)
	require.Equal(t, change, out[0])
	require.Equal(t, 50.0, out[1].Value)
}

// The unit converted is recognised in any bytes, whichever came first (a
// driver's constant or a decoded string), and a unit of the same length is
// not taken for it; in place and not, batch after batch.
func TestUnitFromInAnyBytes(t *testing.T) {
	batch := func() []meter.Measurement {
		return []meter.Measurement{
			m("disk.read.bytes", meter.Gauge, strings.Clone("B"), 1<<20),
			m("disk.read.bytes", meter.Gauge, "B", 2<<20),
			m("disk.read.bytes", meter.Gauge, "b", 3<<20),
			m("disk.read.bytes", meter.Gauge, strings.Clone("B"), 4<<20),
			m("disk.read.bytes", meter.Gauge, "", 5<<20),
		}
	}
	want := []meter.Measurement{
		m("disk.read.bytes", meter.Gauge, "MiB", 1), m("disk.read.bytes", meter.Gauge, "MiB", 2),
		m("disk.read.bytes", meter.Gauge, "b", 3<<20), m("disk.read.bytes", meter.Gauge, "MiB", 4),
		m("disk.read.bytes", meter.Gauge, "", 5<<20),
	}
	for _, inPlace := range []bool{false, true} {
		s, err := unit.New(unit.Config{From: "B", To: "MiB"})
		require.NoError(t, err)
		for range 3 {
			var out []meter.Measurement
			if inPlace {
				out, err = s.ProcessInPlace(context.Background(), batch())
			} else {
				out, err = s.Process(context.Background(), batch(), nil)
			}
			require.NoError(t, err)
			require.Equal(t, want, out, "in place %v", inPlace)
		}
	}
}
