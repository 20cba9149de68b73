package yamlfile

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

// tally counts the measurements it has seen, from start, and writes the
// count into each value: a stateful stage.
type tally struct{ n, step int }

func (c *tally) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	for _, m := range in {
		c.n += c.step
		m.Value = float64(c.n)
		out = append(out, m)
	}
	return out, nil
}
func (c *tally) Checkpoint() ([]byte, error) { return json.Marshal(c.n) }
func (c *tally) Restore(b []byte) error      { return json.Unmarshal(b, &c.n) }

func init() {
	stage.Register("reloadtally", func(cfg meter.Config) (stage.Stage, error) {
		c := &tally{step: 1}
		var s struct {
			Step int `json:"step"`
		}
		if err := cfg.Decode(&s); err != nil {
			return nil, err
		}
		if s.Step != 0 {
			c.step = s.Step
		}
		return c, nil
	})
}

func TestReopenStagesKeepsTheStateOfUnchangedStagesOnly(t *testing.T) {
	parse := func(text string) (*File, []Stage) {
		f, err := Parse("s.yaml", []byte(text))
		require.NoError(t, err)
		specs, err := f.Stages(f.Root, "stages")
		require.NoError(t, err)
		return f, specs
	}
	f, v1 := parse("- {type: reloadtally, name: same}\n- {type: reloadtally, name: changed}\n")
	old, err := f.OpenStages(v1)
	require.NoError(t, err)
	ms := []meter.Measurement{{Name: "m"}, {Name: "m"}, {Name: "m"}}
	out, err := old.Process(context.Background(), ms, nil)
	require.NoError(t, err)
	require.Equal(t, 3.0, out[2].Value)

	f2, v2 := parse("- {type: reloadtally, name: same}\n- {type: reloadtally, name: changed, step: 10}\n")
	require.False(t, SameStages(v1, v2))
	next, err := f2.ReopenStages(v1, v2)
	require.NoError(t, err)
	b, err := old.(stage.Checkpointer).Checkpoint()
	require.NoError(t, err)
	r, ok := stage.As[stage.Restorer](next)
	require.True(t, ok)
	require.NoError(t, r.Restore(b))
	cp, _ := stage.As[stage.Checkpointer](next)
	state, err := cp.Checkpoint()
	require.NoError(t, err)
	require.JSONEq(t, `{"same": 3, "changed": 0}`, string(state),
		"the unchanged stage has its count (3), the changed one starts at 0")
	require.NoError(t, r.Restore(b))
	state, err = cp.Checkpoint()
	require.NoError(t, err)
	require.JSONEq(t, `{"same": 3, "changed": 3}`, string(state), "a later Restore reaches every stage")
}
