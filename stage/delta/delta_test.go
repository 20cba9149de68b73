package delta_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/delta"
	"github.com/meterkit/meter/stage/stagetest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, settings map[string]any) *delta.Delta {
	t.Helper()
	c, err := meter.ConfigFrom(settings)
	require.NoError(t, err)
	s, err := stage.Open("delta", c)
	require.NoError(t, err)
	return s.(*delta.Delta)
}

func counter(sec, v float64, labels ...meter.Label) meter.Measurement {
	return meter.Measurement{Name: "net.bytes", Kind: meter.Cumulative, Unit: "B", Value: v, Time: t0.Add(time.Duration(sec * float64(time.Second))),
		Host: "node1", ResourceID: "eth0", ProjectID: "p", UserID: "u", Labels: labels}
}

// deltas feeds the points one batch each and returns, per point, the delta
// made (nil when none).
func deltas(t *testing.T, s stage.Stage, points ...meter.Measurement) []*float64 {
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
			require.Equal(t, meter.Delta, out[1].Kind)
			v := out[1].Value
			got = append(got, &v)
		default:
			t.Fatalf("%d measurements out of one", len(out))
		}
	}
	return got
}

func f(v float64) *float64 { return &v }

func TestDeltaConformance(t *testing.T) {
	for name, settings := range map[string]map[string]any{
		"Host":      {"meters": []string{"cpu.time", "disk.*"}, "as": "$(name).delta"},
		"DropInput": {"meters": []string{"disk.*"}, "as": "$(name).delta", "drop_input": true},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := meter.ConfigFrom(settings)
			require.NoError(t, err)
			stagetest.Run(t, delta.Open, c, stagetest.HostBatches(4, 2, 2)...)
		})
	}
}

// Worked out by hand.
func TestDeltaHandComputed(t *testing.T) {
	d := open(t, map[string]any{"meters": []string{"net.*"}, "as": "net.bytes.delta"})
	got := deltas(t, d,
		counter(0, 1000),    // first point: none
		counter(10, 1500),   // 500
		counter(20, 1500),   // 0
		counter(30, 200),    // below: a reset, none
		counter(40, 230),    // 30 against the reset point
		counter(40, 999),    // not later: ignored
		counter(35, 999),    // earlier: ignored
		counter(7200, 1230), // two hours later (forget_after is 1h, but the series was seen last): 1000, the usage over the gap
	)
	require.Equal(t, []*float64{nil, f(500), f(0), nil, f(30), nil, nil, f(1000)}, got)
	require.Equal(t, stage.Stats{In: 8, Out: 12, Dropped: 2, Resets: 1, Series: 1}, d.Stats())
}

func TestDeltaOutputMeasurement(t *testing.T) {
	d := open(t, map[string]any{"meters": []string{"net.bytes"}, "as": "net.bytes.delta"})
	ls := []meter.Label{{Key: "device", Value: "eth0"}}
	_, err := d.Process(context.Background(), []meter.Measurement{counter(0, 10, ls...)}, nil)
	require.NoError(t, err)
	in := []meter.Measurement{counter(60, 130, ls...)}
	out, err := d.Process(context.Background(), in, nil)
	require.NoError(t, err)
	require.Len(t, out, 2)
	require.Equal(t, meter.Measurement{Name: "net.bytes.delta", Kind: meter.Delta, Unit: "B", Value: 120, Time: in[0].Time,
		Host: "node1", ResourceID: "eth0", ProjectID: "p", UserID: "u", Labels: ls}, out[1])
	require.Same(t, &ls[0], &out[1].Labels[0], "the input's label slice, shared")
}

// A stream cut in two by a restart from a checkpoint: the deltas add up to
// the counter's increase, no interval counted twice nor missed.
func TestDeltaCheckpointRestoreCountsEachIntervalOnce(t *testing.T) {
	settings := map[string]any{"meters": []string{"net.bytes"}, "as": "net.bytes.delta"}
	values := []float64{100, 250, 250, 900, 1000, 1700, 2300}
	d := open(t, settings)
	var sum float64
	feed := func(d *delta.Delta, from, to int) {
		for i := from; i < to; i++ {
			for _, v := range deltas(t, d, counter(float64(60*i), values[i])) {
				if v != nil {
					require.GreaterOrEqual(t, *v, 0.0)
					sum += *v
				}
			}
		}
	}
	feed(d, 0, 4)
	state, err := d.Checkpoint()
	require.NoError(t, err)
	restored := open(t, settings)
	require.NoError(t, restored.Restore(state))
	again, err := restored.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, string(state), string(again))
	feed(restored, 4, len(values))
	require.Equal(t, values[len(values)-1]-values[0], sum)

	require.ErrorContains(t, restored.Restore([]byte("[]")), "delta: restore")
	require.ErrorContains(t, restored.Restore([]byte(`{"version": 3}`)), "version 3")
}

func TestDeltaDropInputAndBounds(t *testing.T) {
	d := open(t, map[string]any{"meters": []string{"net.bytes"}, "as": "net.bytes.delta", "drop_input": true, "max_series": 1})
	other := counter(0, 5)
	other.ResourceID = "eth1"
	gauge := meter.Measurement{Name: "net.bytes", Kind: meter.Gauge, Value: 1, Time: t0}
	out, err := d.Process(context.Background(), []meter.Measurement{counter(0, 10), other, gauge}, nil)
	require.NoError(t, err)
	require.Equal(t, []meter.Measurement{other, gauge}, out, "a series past max_series and a gauge pass")
	out, err = d.Process(context.Background(), []meter.Measurement{counter(10, 30)}, nil)
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, "net.bytes.delta", out[0].Name)
	require.Equal(t, 20.0, out[0].Value)
	require.Equal(t, stage.Stats{In: 4, Out: 3, Filtered: 2, Dropped: 1, Series: 1}, d.Stats())
}

func TestDeltaForgetsIdleSeries(t *testing.T) {
	d := open(t, map[string]any{"meters": []string{"net.bytes"}, "as": "d", "forget_after": "10m"})
	idle := counter(0, 100)
	idle.ResourceID = "eth1"
	_, err := d.Process(context.Background(), []meter.Measurement{counter(0, 0), idle}, nil)
	require.NoError(t, err)
	for sec := 60.0; sec <= 1200; sec += 60 {
		_, err = d.Process(context.Background(), []meter.Measurement{counter(sec, sec)}, nil)
		require.NoError(t, err)
	}
	require.Equal(t, uint64(1), d.Stats().Series)
	idle.Time, idle.Value = t0.Add(21*time.Minute), 500
	got := deltas(t, d, idle)
	require.Nil(t, got[0], "a forgotten series starts over")
}

func TestDeltaConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"as": "x"}, "meters: required"},
		{map[string]any{"meters": []string{"a"}}, "as: required"},
		{map[string]any{"meters": []string{"a"}, "as": "meterkit.d"}, "meterkit's own"},
		{map[string]any{"meters": []string{"a"}, "as": "$(name)$(name)"}, "once at most"},
		{map[string]any{"meters": []string{"a"}, "as": "x", "max_series": -1}, "max_series"},
		{map[string]any{"meters": []string{"a"}, "as": "x", "forget_after": "-1m"}, "forget_after"},
		{map[string]any{"meters": []string{"a"}, "as": "x", "max_gap": "1m"}, "unknown field"},
	} {
		c, err := meter.ConfigFrom(tc.settings)
		require.NoError(t, err)
		_, err = stage.Open("delta", c)
		require.ErrorContains(t, err, tc.want, tc.settings)
		require.ErrorContains(t, err, "delta: ")
	}
}
