package arithmetic_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/arithmetic"
	"github.com/meterkit/meter/stage/stagetest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, settings map[string]any) *arithmetic.Arithmetic {
	t.Helper()
	c, err := meter.ConfigFrom(settings)
	require.NoError(t, err)
	s, err := stage.Open("arithmetic", c)
	require.NoError(t, err)
	return s.(*arithmetic.Arithmetic)
}

func g(name, res string, v float64, sec int) meter.Measurement {
	return meter.Measurement{Name: name, Kind: meter.Gauge, Unit: "B", Value: v, Time: t0.Add(time.Duration(sec) * time.Second),
		Host: "node1", ResourceID: res}
}

// Values computed by hand.
func TestArithmeticHandComputed(t *testing.T) {
	a := open(t, map[string]any{"expr": "$(memory.used) / $(memory.total) * 100", "as": "memory.usage.percent", "unit": "%"})
	mode := []meter.Label{{Key: "numa", Value: "0"}}
	used := g("memory.used", "memory", 4<<30, 1)
	used.Labels = mode
	in := []meter.Measurement{g("cpu.util", "cpu0", 50, 0), used, g("memory.total", "memory", 16<<30, 2), g("disk.x", "sda", 1, 0)}
	out, err := a.Process(context.Background(), in, nil)
	require.NoError(t, err)
	require.Len(t, out, 5)
	require.Equal(t, in[:3], out[:3])
	require.Equal(t, meter.Measurement{Name: "memory.usage.percent", Kind: meter.Gauge, Unit: "%", Value: 25, Time: t0.Add(2 * time.Second),
		Host: "node1", ResourceID: "memory", Labels: mode}, out[3], "right after the group's last input, at its latest time, with the labels of $(memory.used)")
	require.Equal(t, in[3], out[4])

	// Per resource: two disks, (read + write) / 2 and a conditional.
	b := open(t, map[string]any{"expr": "($(disk.read) + $(disk.write)) / 2 + ($(disk.read) > 10 ? 1000 : 0)", "as": "disk.mean", "kind": "cumulative"})
	in = []meter.Measurement{g("disk.read", "sda", 4, 0), g("disk.read", "sdb", 30, 0), g("disk.write", "sda", 6, 0), g("disk.write", "sdb", 10, 0)}
	out, err = b.Process(context.Background(), in, nil)
	require.NoError(t, err)
	require.Len(t, out, 6)
	require.Equal(t, "sda", out[3].ResourceID)
	require.Equal(t, 5.0, out[3].Value)
	require.Equal(t, meter.Cumulative, out[3].Kind)
	require.Equal(t, "sdb", out[5].ResourceID)
	require.Equal(t, 1020.0, out[5].Value)

	// Built-in functions; the latest of a meter given twice.
	c := open(t, map[string]any{"expr": "max($(a), $(b)) - min($(a), $(b))", "as": "spread"})
	in = []meter.Measurement{g("a", "r", 100, 5), g("a", "r", 1, 9), g("b", "r", 7, 0), g("a", "r", 50, 3)}
	out, err = c.Process(context.Background(), in, nil)
	require.NoError(t, err)
	require.Equal(t, 6.0, out[len(out)-1].Value, "a = 1, the value at the latest time")
}

func TestArithmeticMissingDroppedAndDropInputs(t *testing.T) {
	a := open(t, map[string]any{"expr": "$(x) / $(y)", "as": "ratio", "drop_inputs": true})
	in := []meter.Measurement{
		g("x", "r1", 6, 0), g("y", "r1", 3, 0), // 2
		g("x", "r2", 1, 0),                     // y missing: no output, inputs kept
		g("x", "r3", 1, 0), g("y", "r3", 0, 0), // division by zero: dropped
		g("other", "r1", 1, 0),
	}
	out, err := a.Process(context.Background(), in, nil)
	require.NoError(t, err)
	var names []string
	for _, m := range out {
		names = append(names, m.Name+"/"+m.ResourceID)
	}
	require.Equal(t, []string{"ratio/r1", "x/r2", "other/r1"}, names)
	require.Equal(t, 2.0, out[0].Value)
	require.Equal(t, stage.Stats{In: 6, Out: 3, Missing: 1, Dropped: 1, Filtered: 4}, a.Stats())
}

func TestArithmeticBadExpressions(t *testing.T) {
	for _, tc := range []struct {
		expr, want string
	}{
		{"$(memory.used) / * $(memory.total)", `arithmetic: expression "$(memory.used) / * $(memory.total)": column 18: `},
		{"$(a) + foo", `arithmetic: expression "$(a) + foo": column 8: unknown name foo`},
		{"$(héhé) + + + $(b", `arithmetic: expression "$(héhé) + + + $(b": column 15: $( without its )`},
		{"$() + 1", `column 1: $() is not a meter name`},
		{"1 + 2", "names no meter"},
		{`$(a) + "x"`, `arithmetic: expression "$(a) + \"x\"": column 6: invalid operation`},
	} {
		_, err := arithmetic.New(arithmetic.Config{Expr: tc.expr, As: "x"})
		require.ErrorContains(t, err, tc.want, tc.expr)
	}
	_, err := arithmetic.New(arithmetic.Config{Expr: "$(a)"})
	require.ErrorContains(t, err, "as: required")
	_, err = arithmetic.New(arithmetic.Config{Expr: "$(a)", As: "x", Kind: "counter"})
	require.ErrorContains(t, err, `unknown kind "counter"`)
	_, err = stage.Open("arithmetic", meter.ConfigFromJSON([]byte(`{"expression": "$(a)"}`)))
	require.ErrorContains(t, err, `unknown field "expression"`)
}

func TestArithmeticConformance(t *testing.T) {
	c, err := meter.ConfigFrom(map[string]any{"expr": "$(memory.used) / $(memory.total) * 100", "as": "memory.usage.percent", "unit": "%"})
	require.NoError(t, err)
	stagetest.Run(t, arithmetic.Open, c)
	c, err = meter.ConfigFrom(map[string]any{"expr": "$(disk.read.bytes) + $(disk.write.bytes)", "as": "disk.bytes", "drop_inputs": true})
	require.NoError(t, err)
	stagetest.Run(t, arithmetic.Open, c)
}

// Batches of many groups, one after the other: the groups of an earlier
// batch are reused, including those the slice grew by and never filled.
func TestArithmeticManyGroupsBatchAfterBatch(t *testing.T) {
	a := open(t, map[string]any{"expr": "$(c) * 2", "as": "c2", "kind": "cumulative"})
	for batch, n := range []int{3, 5, 200, 7, 300} {
		in := make([]meter.Measurement, n)
		for i := range in {
			in[i] = g("c", "slot-"+strconv.Itoa(i), float64(batch*1000+i), batch)
		}
		out, err := a.Process(context.Background(), in, nil)
		require.NoError(t, err, "batch %d", batch)
		require.Len(t, out, 2*n, "batch %d: one output a group", batch)
		for i := range n {
			require.Equal(t, in[i], out[2*i])
			require.Equal(t, "c2", out[2*i+1].Name)
			require.Equal(t, 2*in[i].Value, out[2*i+1].Value, "batch %d slot %d", batch, i)
			require.Equal(t, in[i].ResourceID, out[2*i+1].ResourceID)
		}
	}
}
