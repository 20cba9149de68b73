package stagefile_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	_ "github.com/meterkit/meter/stage/selectstage"
	"github.com/meterkit/meter/stage/stagefile"
	_ "github.com/meterkit/meter/stage/unit"
)

func write(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "stages.yaml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

func TestLoad(t *testing.T) {
	p := write(t, `
- type: select
  meters: ["memory.*", "!memory.free"]
- type: unit
  name: to-mib
  meters: ["memory.*"]
  from: B
  to: MiB
`)
	s, err := stagefile.Load(p)
	require.NoError(t, err)
	out, err := s.Process(context.Background(), []meter.Measurement{
		{Name: "memory.used", Kind: meter.Gauge, Unit: "B", Value: 2 << 20},
		{Name: "memory.free", Kind: meter.Gauge, Unit: "B", Value: 1},
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 3},
	}, nil)
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, "MiB", out[0].Unit)
	require.Equal(t, 2.0, out[0].Value)
}

// Every error says which file and line.
func TestErrorsNameFileAndLine(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"type: select\n", ":1: stages: want a list of stages"},
		{"- type: select\n  meters: [cpu.*]\n- nonsense\n", ":3: stages[1]: want a stage"},
		{"- type: select\n  meters: [cpu.*]\n- meters: [x]\n", ":3: stages[1]: stage: type: required"},
		{"- type: select\n  meters: [cpu.*]\n- type: select\n  meters: [mem.*]\n", `:3: stages[1]: a stage named "select" is already at line 1`},
		{"- type: select\n  meters: [cpu.*]\n\n- type: unit\n  to: MiB\n  form: B\n", ":6: stages[1].form: stage unit: "},
		{"- type: nosuch\n", `:1: stages[0].type: unknown stage "nosuch" (registered: `},
		{"- type: select\n  meters: [cpu.*\n", ":1: did not find expected ',' or ']'"},
	} {
		p := write(t, tc.text)
		_, err := stagefile.Load(p)
		require.ErrorContains(t, err, p+tc.want, tc.text)
	}
	_, err := stagefile.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)

	s, err := stagefile.Load(write(t, ""))
	require.NoError(t, err, "an empty file is no stages")
	out, err := s.Process(context.Background(), []meter.Measurement{{Name: "x", Kind: meter.Gauge, Value: 1}}, nil)
	require.NoError(t, err)
	require.Len(t, out, 1)
}
