package rate_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/rate"
	"github.com/meterkit/meter/stage/stagetest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, settings map[string]any) *rate.Rate {
	t.Helper()
	c, err := meter.ConfigFrom(settings)
	require.NoError(t, err)
	s, err := stage.Open("rate", c)
	require.NoError(t, err)
	return s.(*rate.Rate)
}

func config(t *testing.T, settings map[string]any) meter.Config {
	t.Helper()
	c, err := meter.ConfigFrom(settings)
	require.NoError(t, err)
	return c
}

// counter is a point of a cumulative series at t0 + sec seconds.
func counter(name, unit string, sec float64, v float64, labels ...meter.Label) meter.Measurement {
	return meter.Measurement{Name: name, Kind: meter.Cumulative, Unit: unit, Value: v, Time: t0.Add(time.Duration(sec * float64(time.Second))),
		Host: "node1", ResourceID: "eth0", ProjectID: "p", UserID: "u", Labels: labels}
}

// rates feeds the points one batch each and returns, per point, the rate
// made (nil when none).
func rates(t *testing.T, s stage.Stage, points ...meter.Measurement) []*float64 {
	t.Helper()
	var got []*float64
	for _, p := range points {
		out, err := s.Process(context.Background(), []meter.Measurement{p}, nil)
		require.NoError(t, err)
		require.NotEmpty(t, out)
		require.Equal(t, p, out[0], "the input comes first, unchanged")
		switch len(out) {
		case 1:
			got = append(got, nil)
		case 2:
			require.NoError(t, out[1].Validate())
			v := out[1].Value
			got = append(got, &v)
		default:
			t.Fatalf("%d measurements out of one", len(out))
		}
	}
	return got
}

func f(v float64) *float64 { return &v }

func TestRateConformance(t *testing.T) {
	t.Run("Host", func(t *testing.T) {
		stagetest.Run(t, rate.Open, config(t, map[string]any{"meters": []string{"cpu.time", "disk.*"}, "as": "x.rate"}),
			stagetest.HostBatches(4, 2, 2)...)
	})
	t.Run("PercentDropInput", func(t *testing.T) {
		stagetest.Run(t, rate.Open, config(t, map[string]any{"meters": []string{"cpu.time"}, "as": "cpu.busy", "percent_of": 1, "drop_input": true}),
			stagetest.HostBatches(4, 2, 1)...)
	})
	t.Run("CPUUtil", func(t *testing.T) {
		stagetest.Run(t, rate.Open, config(t, map[string]any{"meters": []string{"cpu"}, "as": "cpu_util", "percent_of": "vcpus"}),
			libvirtBatches(4)...)
	})
}

// Worked out by hand: a byte counter at 10 s intervals.
func TestRateHandComputed(t *testing.T) {
	r := open(t, map[string]any{"meters": []string{"net.*"}, "as": "net.rate", "max_gap": "1m"})
	got := rates(t, r,
		counter("net.bytes", "B", 0, 1000),   // first point: none
		counter("net.bytes", "B", 10, 1500),  // 500 B in 10 s: 50 B/s
		counter("net.bytes", "B", 20, 1500),  // 0
		counter("net.bytes", "B", 25, 1600),  // 100 in 5 s: 20
		counter("net.bytes", "B", 30, 200),   // below: a reset, none
		counter("net.bytes", "B", 40, 230),   // 30 in 10 s against the reset point: 3
		counter("net.bytes", "B", 40, 999),   // not later: ignored
		counter("net.bytes", "B", 35, 999),   // earlier: ignored
		counter("net.bytes", "B", 110, 1000), // 70 s after 40: over max_gap, none
		counter("net.bytes", "B", 112, 1001), // 1 in 2 s against the gap's point: 0.5
	)
	require.Equal(t, []*float64{nil, f(50), f(0), f(20), nil, f(3), nil, nil, nil, f(0.5)}, got)
	require.Equal(t, stage.Stats{In: 10, Out: 15, Dropped: 2, Resets: 1, Series: 1}, r.Stats())
}

func TestRateOutputMeasurement(t *testing.T) {
	r := open(t, map[string]any{"meters": []string{"net.bytes", "cpu.util"}, "as": "net.rate"})
	ls := []meter.Label{{Key: "device", Value: "eth0"}}
	gauge := meter.Measurement{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 5, Time: t0, Host: "node1"}
	in := []meter.Measurement{counter("net.bytes", "B", 0, 10, ls...), gauge}
	out, err := r.Process(context.Background(), in, nil)
	require.NoError(t, err)
	require.Equal(t, in, out, "a first point makes nothing; a gauge passes unchanged")

	in = []meter.Measurement{counter("net.bytes", "B", 60, 130, ls...), gauge}
	out, err = r.Process(context.Background(), in, nil)
	require.NoError(t, err)
	require.Len(t, out, 3)
	require.Equal(t, in[0], out[0])
	require.Equal(t, meter.Measurement{Name: "net.rate", Kind: meter.Gauge, Unit: "B/s", Value: 2, Time: in[0].Time,
		Host: "node1", ResourceID: "eth0", ProjectID: "p", UserID: "u", Labels: ls}, out[1])
	require.Same(t, &ls[0], &out[1].Labels[0], "the input's label slice, shared")
	require.Equal(t, gauge, out[2])

	out, err = r.Process(context.Background(), []meter.Measurement{counter("n", "", 0, 1), counter("net.bytes", "", 120, 190, ls...)}, nil)
	require.NoError(t, err)
	require.Len(t, out, 3)
	require.Equal(t, "/s", out[2].Unit, "no unit: per second")
	require.Equal(t, 1.0, out[2].Value)
}

// libvirtBatches are n collections, a minute apart, of the libvirt driver's
// cpu (cumulative ns, labels of the instance and vcpus) for two guests: one
// with 2 vCPUs busy 1.5 of them (90e9 ns a minute), one with 1 vCPU idle
// then busy.
func libvirtBatches(n int) [][]meter.Measurement {
	a := []meter.Label{{Key: "display_name", Value: "web"}, {Key: "vcpus", Value: "2"}}
	b := []meter.Label{{Key: "display_name", Value: "db"}, {Key: "vcpus", Value: "1"}}
	out := make([][]meter.Measurement, n)
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Minute)
		cpu := func(uuid string, v float64, ls []meter.Label) meter.Measurement {
			return meter.Measurement{Name: "cpu", Kind: meter.Cumulative, Unit: "ns", Value: v, Time: at,
				Host: "compute1", ResourceID: uuid, ProjectID: "proj", UserID: "user", Labels: ls}
		}
		out[i] = []meter.Measurement{
			cpu("uuid-a", 1e12+float64(i)*90e9, a),
			{Name: "vcpus", Kind: meter.Gauge, Unit: "vcpu", Value: 2, Time: at, Host: "compute1", ResourceID: "uuid-a", Labels: a[:1]},
			cpu("uuid-b", 5e9+float64(i*i)*30e9, b),
		}
	}
	return out
}

// libvirt's cpu_util, as the driver's doc gives it: cpu in ns, percent of
// the label vcpus.
func TestRateCPUUtilLibvirt(t *testing.T) {
	r := open(t, map[string]any{"meters": []string{"cpu"}, "as": "cpu_util", "percent_of": "vcpus"})
	var utils []float64
	var units []string
	for _, batch := range libvirtBatches(4) {
		out, err := r.Process(context.Background(), batch, nil)
		require.NoError(t, err)
		for _, m := range out {
			if m.Name == "cpu_util" {
				utils = append(utils, m.Value)
				units = append(units, m.Unit)
				require.Equal(t, meter.Gauge, m.Kind)
			}
		}
	}
	// a: 90e9 ns a minute = 1.5 s/s of 2 vCPUs = 75 %.
	// b: i*i*30e9: 30e9, 90e9, 150e9 ns a minute = 0.5, 1.5, 2.5 s/s of 1 vCPU.
	require.Equal(t, []float64{75, 50, 75, 150, 75, 250}, utils)
	require.Equal(t, []string{"%", "%", "%", "%", "%", "%"}, units)
	require.Equal(t, uint64(2), r.Stats().Series)
}

func TestRateCPUUtilVCPUsChange(t *testing.T) {
	r := open(t, map[string]any{"meters": []string{"cpu"}, "as": "cpu_util", "percent_of": "vcpus"})
	cpu := func(sec, v float64, vcpus string) meter.Measurement {
		m := counter("cpu", "ns", sec, v, meter.Label{Key: "name", Value: "vm"}, meter.Label{Key: "vcpus", Value: vcpus})
		return m
	}
	got := rates(t, r,
		cpu(0, 0, "2"),
		cpu(60, 60e9, "2"),   // 1 s/s of 2: 50
		cpu(120, 180e9, "4"), // hot-plugged: same series, 2 s/s of 4: 50
		cpu(180, 420e9, "4"), // 4 s/s of 4: 100
		cpu(240, 480e9, "0"), // not above 0: none
		cpu(300, 540e9, "x"), // not a number: none
		counter("cpu", "ns", 360, 600e9, meter.Label{Key: "name", Value: "vm"}), // no vcpus: none, missing
		cpu(420, 660e9, "1"), // 1 s/s of 1: 100
	)
	require.Equal(t, []*float64{nil, f(50), f(50), f(100), nil, nil, nil, f(100)}, got)
	st := r.Stats()
	require.Equal(t, uint64(1), st.Series, "vcpus is not part of the series")
	require.Equal(t, uint64(2), st.Dropped)
	require.Equal(t, uint64(1), st.Missing)
}

// percent = rate in the base unit per second x 100 / N.
func TestRatePercentUnits(t *testing.T) {
	for _, tc := range []struct {
		unit string
		inc  float64 // a 10 s increase
		want float64
	}{
		{"ns", 5e9, 12.5},   // 0.5 s/s of 4
		{"us", 5e6, 12.5},   // the same in µs
		{"µs", 5e6, 12.5},   //
		{"ms", 5e3, 12.5},   //
		{"s", 5, 12.5},      //
		{"B", 1e6, 2500000}, // 1e5 B/s x 100 / 4: not a time, its own base unit
	} {
		t.Run(tc.unit, func(t *testing.T) {
			r := open(t, map[string]any{"meters": []string{"busy"}, "as": "busy.percent", "percent_of": 4})
			got := rates(t, r, counter("busy", tc.unit, 0, 1e10), counter("busy", tc.unit, 10, 1e10+tc.inc))
			require.Nil(t, got[0])
			require.NotNil(t, got[1])
			require.InDelta(t, tc.want, *got[1], 1e-9*tc.want)
		})
	}
}

func TestRateDropInput(t *testing.T) {
	r := open(t, map[string]any{"meters": []string{"net.bytes"}, "as": "net.rate", "drop_input": true, "max_series": 1})
	other := counter("net.bytes", "B", 0, 5)
	other.ResourceID = "eth1"
	out, err := r.Process(context.Background(), []meter.Measurement{counter("net.bytes", "B", 0, 10), other}, nil)
	require.NoError(t, err)
	require.Equal(t, []meter.Measurement{other}, out, "the first point is dropped too; a series past max_series passes")
	out, err = r.Process(context.Background(), []meter.Measurement{counter("net.bytes", "B", 10, 30)}, nil)
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, "net.rate", out[0].Name)
	require.Equal(t, 2.0, out[0].Value)
	require.Equal(t, stage.Stats{In: 3, Out: 2, Filtered: 2, Dropped: 1, Series: 1}, r.Stats())
}

func TestRateMemoryBounds(t *testing.T) {
	r := open(t, map[string]any{"meters": []string{"net.bytes"}, "as": "net.rate", "max_series": 2, "forget_after": "10m"})
	batch := func(sec, v float64) []meter.Measurement {
		in := []meter.Measurement{counter("net.bytes", "B", sec, v), counter("net.bytes", "B", sec, v), counter("net.bytes", "B", sec, v)}
		in[1].ResourceID, in[2].ResourceID = "eth1", "eth2"
		return in
	}
	_, err := r.Process(context.Background(), batch(0, 0), nil)
	require.NoError(t, err)
	out, err := r.Process(context.Background(), batch(60, 60), nil)
	require.NoError(t, err)
	require.Len(t, out, 5, "two rates, the third series passes unstaged")
	require.Equal(t, "eth2", out[4].ResourceID)
	require.Equal(t, stage.Stats{In: 6, Out: 8, Dropped: 2, Series: 2}, r.Stats())

	// eth0 goes on; eth1 stops: after forget_after it is forgotten.
	for sec := 120.0; sec <= 1200; sec += 60 {
		_, err = r.Process(context.Background(), []meter.Measurement{counter("net.bytes", "B", sec, sec)}, nil)
		require.NoError(t, err)
	}
	require.Equal(t, uint64(1), r.Stats().Series)
	again := counter("net.bytes", "B", 1260, 5000)
	again.ResourceID = "eth1"
	out, err = r.Process(context.Background(), []meter.Measurement{again}, nil)
	require.NoError(t, err)
	require.Len(t, out, 1, "a forgotten series starts over: a first point")
	require.Equal(t, uint64(2), r.Stats().Series)
}

func TestRateCheckpointRestore(t *testing.T) {
	settings := map[string]any{"meters": []string{"cpu"}, "as": "cpu_util", "percent_of": "vcpus"}
	batches := libvirtBatches(3)
	r := open(t, settings)
	_, err := r.Process(context.Background(), batches[0], nil)
	require.NoError(t, err)
	state, err := r.Checkpoint()
	require.NoError(t, err)
	require.Contains(t, string(state), `"name":"cpu"`)
	require.NotContains(t, string(state), "vcpus", "the percent_of label is not part of a series")

	restored := open(t, settings)
	require.NoError(t, restored.Restore(state))
	again, err := restored.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, string(state), string(again), "the same state gives the same bytes")
	require.Equal(t, uint64(2), restored.Stats().Series)
	out, err := restored.Process(context.Background(), batches[1], nil)
	require.NoError(t, err)
	require.Len(t, out, 5, "the first batch after a restore has its rates")
	require.Equal(t, 75.0, out[1].Value)

	fresh := open(t, settings)
	out, err = fresh.Process(context.Background(), batches[1], nil)
	require.NoError(t, err)
	require.Len(t, out, 3, "without the state, no rate")

	require.ErrorContains(t, restored.Restore([]byte("nope")), "rate: restore")
	require.ErrorContains(t, restored.Restore([]byte(`{"version": 2}`)), "version 2")
	require.ErrorContains(t, restored.Restore([]byte(`{"version": 1, "series": [{"name": "", "t": 1, "v": 1}]}`)), "series 0")
	require.ErrorContains(t, restored.Restore([]byte(`{"version": 1, "series": [{"name": "a", "t": 1, "v": 1}, {"name": "a", "t": 2, "v": 1}]}`)), "given twice")
	out, err = restored.Process(context.Background(), batches[2], nil)
	require.NoError(t, err)
	require.Len(t, out, 5, "a failed restore leaves the state as it was")
}

func TestRateConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"as": "x"}, "meters: required"},
		{map[string]any{"meters": []string{"cpu"}}, "as: required"},
		{map[string]any{"meters": []string{"cpu"}, "as": "meterkit.x"}, "meterkit's own"},
		{map[string]any{"meters": []string{"cpu"}, "as": "x", "percent_of": -1}, "above 0"},
		{map[string]any{"meters": []string{"cpu"}, "as": "x", "percent_of": true}, "percent_of: want a label name"},
		{map[string]any{"meters": []string{"cpu"}, "as": "x", "max_gap": "-1s"}, "max_gap"},
		{map[string]any{"meters": []string{"cpu"}, "as": "x", "max_series": -1}, "max_series"},
		{map[string]any{"meters": []string{"cpu"}, "as": "x", "forget_after": "-1s"}, "forget_after"},
		{map[string]any{"meters": []string{"cpu"}, "as": "x", "rename": "y"}, "unknown field"},
	} {
		c, err := meter.ConfigFrom(tc.settings)
		require.NoError(t, err)
		_, err = stage.Open("rate", c)
		require.ErrorContains(t, err, tc.want, tc.settings)
		require.ErrorContains(t, err, "rate: ")
	}
}

func TestRatePercentOfJSON(t *testing.T) {
	for _, p := range []rate.PercentOf{{Label: "vcpus"}, {N: 4}} {
		c, err := meter.ConfigFrom(rate.Config{Meters: stage.MustCompileMeters("cpu"), As: "x", PercentOf: p})
		require.NoError(t, err)
		var back rate.Config
		require.NoError(t, c.Decode(&back))
		require.Equal(t, p, back.PercentOf)
	}
	c, err := meter.ConfigFrom(rate.Config{Meters: stage.MustCompileMeters("cpu"), As: "x"})
	require.NoError(t, err)
	b, err := c.MarshalJSON()
	require.NoError(t, err)
	require.NotContains(t, string(b), "percent_of", "no percentage: not written")
}

func TestRateNameTemplate(t *testing.T) {
	r := open(t, map[string]any{"meters": []string{"disk.*.bytes"}, "as": "$(name).rate"})
	batch := func(sec, v float64) []meter.Measurement {
		return []meter.Measurement{counter("disk.read.bytes", "B", sec, v), counter("disk.write.bytes", "B", sec, 2*v)}
	}
	_, err := r.Process(context.Background(), batch(0, 0), nil)
	require.NoError(t, err)
	out, err := r.Process(context.Background(), batch(10, 100), nil)
	require.NoError(t, err)
	require.Len(t, out, 4)
	require.Equal(t, "disk.read.bytes.rate", out[1].Name)
	require.Equal(t, 10.0, out[1].Value)
	require.Equal(t, "disk.write.bytes.rate", out[3].Name)
	require.Equal(t, 20.0, out[3].Value)

	_, err = rate.New(rate.Config{Meters: stage.MustCompileMeters("x"), As: "$(name).$(name)"})
	require.ErrorContains(t, err, "once at most")
}
