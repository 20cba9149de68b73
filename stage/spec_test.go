package stage_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

func TestSpecsOpenChain(t *testing.T) {
	var specs []stage.Spec
	require.NoError(t, json.Unmarshal([]byte(`[
		{"type": "select", "meters": ["memory.*"]},
		{"type": "unit", "name": "mib", "from": "B", "to": "MiB"},
		{"type": "levels", "meters": ["memory.used"], "warning": 10}
	]`), &specs))
	require.Equal(t, "select", specs[0].Type)
	require.Equal(t, "mib", specs[1].Name)
	b, err := json.Marshal(specs[1])
	require.NoError(t, err)
	require.JSONEq(t, `{"type": "unit", "name": "mib", "from": "B", "to": "MiB"}`, string(b))

	c, err := stage.OpenChain(specs)
	require.NoError(t, err)
	out, err := c.Process(context.Background(), []meter.Measurement{
		{Name: "memory.used", Kind: meter.Gauge, Unit: "B", Value: 32 << 20, Time: t0}, gauge("cpu.util", 1)}, nil)
	require.NoError(t, err)
	require.Len(t, out, 2)
	require.Equal(t, 32.0, out[0].Value)
	require.Equal(t, meter.StateChange, out[1].Name)
	state, err := c.(stage.Checkpointer).Checkpoint()
	require.NoError(t, err)
	var keyed map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(state, &keyed))
	require.Contains(t, keyed, "levels", "state keyed by the stage's name, its type by default")

	for _, tc := range []struct{ json, want string }{
		{`[{"type": "select", "meters": ["a"]}, {"type": "select", "meters": ["b"]}]`, `stages 1 and 2 are both named "select"`},
		{`[{"type": "unit", "form": "B"}]`, `stage 1 (unit): stage "unit": unit: config: json: unknown field "form"`},
		{`[{"type": "nope"}]`, `unknown stage "nope" (forgotten import?)`},
	} {
		require.NoError(t, json.Unmarshal([]byte(tc.json), &specs))
		_, err := stage.OpenChain(specs)
		require.ErrorContains(t, err, tc.want)
	}
	require.ErrorContains(t, json.Unmarshal([]byte(`[{"meters": ["a"]}]`), &specs), "type: required")
	require.ErrorContains(t, json.Unmarshal([]byte(`[{"type": 5}]`), &specs), "type: want a string")
	require.ErrorContains(t, json.Unmarshal([]byte(`["select"]`), &specs), "want an object")
}
