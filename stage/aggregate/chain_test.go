package aggregate_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	_ "github.com/meterkit/meter/stage/levels"
)

// In a chain made from a configuration, the aggregate's windows closed by
// Tick go through the stages after it, and the chain keeps the aggregate's
// state under its name.
func TestAggregateInChain(t *testing.T) {
	var specs []stage.Spec
	require.NoError(t, json.Unmarshal([]byte(`[
		{"type": "aggregate", "name": "per-host", "meters": ["cpu.util"], "group_by": ["host"], "window": "1m", "lateness": "0s", "functions": ["max"]},
		{"type": "levels", "meters": ["cpu.util.max"], "warning": 80}
	]`), &specs))
	c, err := stage.OpenChain(specs)
	require.NoError(t, err)
	out, err := c.Process(context.Background(), []meter.Measurement{util("a", 10, 50), util("a", 20, 90)}, nil)
	require.NoError(t, err)
	require.Len(t, out, 2)

	cp, ok := stage.As[stage.Checkpointer](c)
	require.True(t, ok)
	state, err := cp.Checkpoint()
	require.NoError(t, err)
	require.Contains(t, string(state), "per-host")
	restored, err := stage.OpenChain(specs)
	require.NoError(t, err)
	r, _ := stage.As[stage.Restorer](restored)
	require.NoError(t, r.Restore(state))

	for _, s := range []stage.Stage{c, restored} {
		tk, ok := stage.As[stage.Ticker](s)
		require.True(t, ok)
		out, err = tk.Tick(context.Background(), t0.Add(time.Minute), nil)
		require.NoError(t, err)
		require.Len(t, out, 2, "the max, and the change of level levels reports")
		require.Equal(t, "cpu.util.max", out[0].Name)
		require.Equal(t, 90.0, out[0].Value)
		lv, _ := out[0].Label(meter.StateLabel)
		require.Equal(t, "warning", lv)
		require.Equal(t, meter.StateChange, out[1].Name)
	}
}
