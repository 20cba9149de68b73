package aggregate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/aggregate"
	"github.com/meterkit/meter/stage/stagetest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, settings map[string]any) *aggregate.Aggregate {
	t.Helper()
	c, err := meter.ConfigFrom(settings)
	require.NoError(t, err)
	s, err := stage.Open("aggregate", c)
	require.NoError(t, err)
	return s.(*aggregate.Aggregate)
}

func util(host string, sec, v float64) meter.Measurement {
	return meter.Measurement{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: v, Time: t0.Add(time.Duration(sec * float64(time.Second))),
		Host: host, ResourceID: "total", ProjectID: "p", UserID: "u"}
}

// lines renders the aggregates of out (the measurements not in in) as
// "15:04:05 name host value unit kind labels".
func lines(out []meter.Measurement, skip int) []string {
	var ls []string
	for _, m := range out[skip:] {
		l := fmt.Sprintf("%s %s %s %v %s %s", m.Time.Format("15:04:05"), m.Name, m.Host, m.Value, m.Unit, m.Kind)
		for _, lb := range m.Labels {
			l += " " + lb.Key + "=" + lb.Value
		}
		ls = append(ls, l)
	}
	return ls
}

func TestAggregateConformance(t *testing.T) {
	for name, settings := range map[string]map[string]any{
		"NoLateness": {"meters": []string{"cpu.*", "disk.*"}, "window": "1m", "lateness": "0s", "group_by": []string{"host"}},
		"ByLabel": {"meters": []string{"cpu.time"}, "window": "2m", "lateness": "1m", "group_by": []string{"resource", "label:mode"},
			"functions": []string{"sum", "last"}, "labels": map[string]string{"publisher": "pub1"}, "drop_input": true},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := meter.ConfigFrom(settings)
			require.NoError(t, err)
			stagetest.Run(t, aggregate.Open, c, stagetest.HostBatches(6, 2, 2)...)
		})
	}
}

// Worked out by hand: two hosts, 1 min windows, 30 s of lateness.
func TestAggregateHandComputed(t *testing.T) {
	a := open(t, map[string]any{"meters": []string{"cpu.util"}, "window": "1m", "lateness": "30s", "group_by": []string{"host"}})
	process := func(in ...meter.Measurement) []string {
		out, err := a.Process(context.Background(), in, nil)
		require.NoError(t, err)
		require.Equal(t, in, out[:len(in)], "the inputs first, unchanged")
		return lines(out, len(in))
	}
	require.Empty(t, process(util("a", 0, 10), util("a", 20, 30), util("b", 10, 50)))
	require.Empty(t, process(util("a", 40, 20), util("b", 59.9, 70), util("a", 61, 100)), "the first window is not past 00:01:30 yet")
	require.Empty(t, process(util("b", 50, 90)), "within the lateness: still counted")
	// 00:01:30 closes the window [00:00, 00:01): a had 10, 30, 20 (last 20
	// at 00:40); b had 50, 70, 90 (last 70 at 00:59.9, the 90 being older).
	require.Equal(t, []string{
		"00:00:00 cpu.util.sum a 60 % gauge", "00:00:00 cpu.util.mean a 20 % gauge", "00:00:00 cpu.util.min a 10 % gauge",
		"00:00:00 cpu.util.max a 30 % gauge", "00:00:00 cpu.util.last a 20 % gauge", "00:00:00 cpu.util.count a 3  gauge",
		"00:00:00 cpu.util.sum b 210 % gauge", "00:00:00 cpu.util.mean b 70 % gauge", "00:00:00 cpu.util.min b 50 % gauge",
		"00:00:00 cpu.util.max b 90 % gauge", "00:00:00 cpu.util.last b 70 % gauge", "00:00:00 cpu.util.count b 3  gauge",
	}, process(util("b", 90, 40)))
	require.Empty(t, process(util("a", 30, 1000)), "late: left out, the window is never revised")
	st := a.Stats()
	require.Equal(t, uint64(1), st.Late)
	require.Equal(t, uint64(2), st.Series, "a (00:01:01) and b (00:01:30) in [00:01, 00:02)")

	// Tick, by the composer's clock, closes the next window.
	out, err := a.Tick(context.Background(), t0.Add(2*time.Minute+29*time.Second), nil)
	require.NoError(t, err)
	require.Empty(t, out)
	out, err = a.Tick(context.Background(), t0.Add(2*time.Minute+30*time.Second), nil)
	require.NoError(t, err)
	require.Equal(t, []string{
		"00:01:00 cpu.util.sum a 100 % gauge", "00:01:00 cpu.util.mean a 100 % gauge", "00:01:00 cpu.util.min a 100 % gauge",
		"00:01:00 cpu.util.max a 100 % gauge", "00:01:00 cpu.util.last a 100 % gauge", "00:01:00 cpu.util.count a 1  gauge",
		"00:01:00 cpu.util.sum b 40 % gauge", "00:01:00 cpu.util.mean b 40 % gauge", "00:01:00 cpu.util.min b 40 % gauge",
		"00:01:00 cpu.util.max b 40 % gauge", "00:01:00 cpu.util.last b 40 % gauge", "00:01:00 cpu.util.count b 1  gauge",
	}, lines(out, 0))
	st = a.Stats()
	require.Equal(t, uint64(0), st.Series)
	require.Equal(t, uint64(9+24), st.Out, "Process and Tick both count their output")
}

// Billing: deltas summed per project and hour, the publisher's id added.
func TestAggregateKindsAndLabels(t *testing.T) {
	a := open(t, map[string]any{"meters": []string{"net.*"}, "window": "1h", "lateness": "0s", "group_by": []string{"project", "label:tier"},
		"functions": []string{"sum", "last"}, "as": "$(name).hourly.$(fn)", "labels": map[string]string{"publisher": "pub1"}, "drop_input": true})
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	gold := []meter.Label{{Key: "tier", Value: "gold"}, {Key: "device", Value: "eth0"}}
	in := []meter.Measurement{
		{Name: "net.bytes.delta", Kind: meter.Delta, Unit: "B", Value: 100, Time: at(10), Host: "h1", ResourceID: "r1", ProjectID: "p1", Labels: gold},
		{Name: "net.bytes.delta", Kind: meter.Delta, Unit: "B", Value: 50, Time: at(20), Host: "h2", ResourceID: "r2", ProjectID: "p1", Labels: gold},
		{Name: "net.bytes.delta", Kind: meter.Delta, Unit: "B", Value: 7, Time: at(30), Host: "h2", ResourceID: "r3", ProjectID: "p1"},
		{Name: "net.bytes", Kind: meter.Cumulative, Unit: "B", Value: 5000, Time: at(30), Host: "h1", ProjectID: "p2"},
		{Name: "net.bytes", Kind: meter.Cumulative, Unit: "B", Value: 5100, Time: at(40), Host: "h1", ProjectID: "p2"},
	}
	out, err := a.Process(context.Background(), in, nil)
	require.NoError(t, err)
	require.Empty(t, out, "drop_input: the inputs are removed; no window is final yet")
	out, err = a.Tick(context.Background(), at(60), nil)
	require.NoError(t, err)
	require.Equal(t, []string{
		"00:00:00 net.bytes.hourly.sum  10100 B gauge publisher=pub1",
		"00:00:00 net.bytes.hourly.last  5100 B cumulative publisher=pub1",
		"00:00:00 net.bytes.delta.hourly.sum  7 B delta publisher=pub1",
		"00:00:00 net.bytes.delta.hourly.last  7 B gauge publisher=pub1",
		"00:00:00 net.bytes.delta.hourly.sum  150 B delta tier=gold publisher=pub1",
		"00:00:00 net.bytes.delta.hourly.last  50 B gauge tier=gold publisher=pub1",
	}, lines(out, 0))
	for _, m := range out {
		require.NoError(t, m.Validate())
		require.Empty(t, m.ResourceID, "not grouped by resource")
	}
	require.Equal(t, "p1", out[2].ProjectID)
	require.Equal(t, stage.Stats{In: 5, Out: 6, Filtered: 5}, a.Stats())
}

func TestAggregateCheckpointRestore(t *testing.T) {
	settings := map[string]any{"meters": []string{"cpu.util"}, "window": "1m", "lateness": "0s", "group_by": []string{"host"}, "functions": []string{"mean", "count"}}
	a := open(t, settings)
	_, err := a.Process(context.Background(), []meter.Measurement{util("a", 10, 10), util("b", 20, 20), util("a", 30, 40)}, nil)
	require.NoError(t, err)
	state, err := a.Checkpoint()
	require.NoError(t, err)

	restored := open(t, settings)
	require.NoError(t, restored.Restore(state))
	again, err := restored.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, string(state), string(again), "the same state gives the same bytes")
	require.Equal(t, uint64(2), restored.Stats().Series)
	next := []meter.Measurement{util("a", 50, 70), util("b", 65, 0)}
	want, err := a.Process(context.Background(), next, nil)
	require.NoError(t, err)
	got, err := restored.Process(context.Background(), next, nil)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, []string{"00:00:00 cpu.util.mean a 40 % gauge", "00:00:00 cpu.util.count a 3  gauge",
		"00:00:00 cpu.util.mean b 20 % gauge", "00:00:00 cpu.util.count b 1  gauge"}, lines(got, 2),
		"the open windows went on from the checkpoint")
	out, err := restored.Process(context.Background(), []meter.Measurement{util("a", 55, 1)}, nil)
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, uint64(1), restored.Stats().Late, "the clock is state too")

	require.ErrorContains(t, restored.Restore([]byte("{")), "aggregate: restore")
	require.ErrorContains(t, restored.Restore([]byte(`{"version": 2}`)), "version 2")
	require.ErrorContains(t, restored.Restore([]byte(`{"version": 1, "windows": [{"name": "x", "kind": "gauge", "n": 0}]}`)), "no points")
	require.ErrorContains(t, restored.Restore([]byte(`{"version": 1, "windows": [{"name": "x", "kind": "gauge", "n": 1}, {"name": "x", "kind": "gauge", "n": 1}]}`)), "given twice")
	require.ErrorContains(t, restored.Restore([]byte(`{"version": 1, "windows": [{"start": 1000000000, "name": "x", "kind": "gauge", "n": 1}]}`)), "another window length")
	require.Equal(t, uint64(1), restored.Stats().Series, "a failed restore leaves the state as it was")
}

func TestAggregateMaxSeries(t *testing.T) {
	a := open(t, map[string]any{"meters": []string{"cpu.util"}, "window": "1m", "group_by": []string{"host"}, "max_series": 2})
	out, err := a.Process(context.Background(), []meter.Measurement{util("a", 1, 1), util("b", 1, 1), util("c", 1, 1), util("a", 2, 3)}, nil)
	require.NoError(t, err)
	require.Len(t, out, 4, "every input passes")
	require.Equal(t, stage.Stats{In: 4, Out: 4, Dropped: 1, Series: 2}, a.Stats())
}

func TestAggregateWindowsAligned(t *testing.T) {
	a := open(t, map[string]any{"meters": []string{"cpu.util"}, "window": "15m", "lateness": "0s", "functions": []string{"count"}})
	var got []string
	for _, min := range []int{7, 14, 15, 29, 31, 44, 45} {
		m := util("a", float64(60*min), 1)
		out, err := a.Process(context.Background(), []meter.Measurement{m}, nil)
		require.NoError(t, err)
		got = append(got, lines(out, 1)...)
	}
	require.Equal(t, []string{"00:00:00 cpu.util.count  2  gauge", "00:15:00 cpu.util.count  2  gauge", "00:30:00 cpu.util.count  2  gauge"}, got)
}

func TestAggregateConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"window": "1m"}, "meters: required"},
		{map[string]any{"meters": []string{"a"}}, "window: required"},
		{map[string]any{"meters": []string{"a"}, "window": "1m", "lateness": "-1s"}, "lateness"},
		{map[string]any{"meters": []string{"a"}, "window": "1m", "group_by": []string{"zone"}}, "label:<key>"},
		{map[string]any{"meters": []string{"a"}, "window": "1m", "group_by": []string{"host", "host"}}, "twice"},
		{map[string]any{"meters": []string{"a"}, "window": "1m", "functions": []string{"median"}}, "median"},
		{map[string]any{"meters": []string{"a"}, "window": "1m", "as": "$(name).agg"}, "$(fn)"},
		{map[string]any{"meters": []string{"a"}, "window": "1m", "functions": []string{"sum"}, "as": "meterkit.x"}, "meterkit's own"},
		{map[string]any{"meters": []string{"a"}, "window": "1m", "max_series": -1}, "max_series"},
		{map[string]any{"meters": []string{"a"}, "window": "1m", "group_by": []string{"label:x"}, "labels": map[string]string{"x": "y"}}, "grouped by"},
	} {
		c, err := meter.ConfigFrom(tc.settings)
		require.NoError(t, err)
		_, err = stage.Open("aggregate", c)
		require.ErrorContains(t, err, tc.want, tc.settings)
		require.ErrorContains(t, err, "aggregate: ")
	}
}
