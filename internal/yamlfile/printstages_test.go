package yamlfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// StagesInEffect prints the inline stages, or those of the stage file
// when one is named, secrets redacted either way.
func TestStagesInEffect(t *testing.T) {
	f, err := Parse("c.yaml", []byte("stages:\n  - {type: select, meters: [cpu]}\n"))
	require.NoError(t, err)
	_, sn := Get(f.Root, "stages")
	inline, err := f.Stages(sn, "stages")
	require.NoError(t, err)
	got, err := StagesInEffect(f, inline, "")
	require.NoError(t, err)
	require.Equal(t, []any{map[string]any{"type": "select", "meters": []any{"cpu"}}}, got)

	sf := filepath.Join(t.TempDir(), "stages.yaml")
	require.NoError(t, os.WriteFile(sf, []byte("- {type: reloadtally, name: a, password: hush}\n- {type: unit}\n"), 0o600))
	got, err = StagesInEffect(f, nil, sf)
	require.NoError(t, err)
	require.Equal(t, []any{
		map[string]any{"type": "reloadtally", "name": "a", "password": "REDACTED"},
		map[string]any{"type": "unit"},
	}, got)

	require.NoError(t, os.WriteFile(sf, []byte("- {type: unit}\n- unit\n"), 0o600))
	_, err = StagesInEffect(f, nil, sf)
	require.ErrorContains(t, err, sf+":2: stages[1]: want a stage")
	_, err = StagesInEffect(f, nil, sf+".missing")
	require.ErrorContains(t, err, "stages_file: open "+sf+".missing: no such file or directory")
}

// WriteConfig prints the stages in effect after the config's own keys,
// under a note naming the stage file they come from, and no stages: key
// when there are none.
func TestWriteConfig(t *testing.T) {
	v := struct {
		A string `yaml:"a"`
		B []int  `yaml:"b"`
		C string `yaml:"c,omitempty"`
	}{A: "x", B: []int{1}}
	f, err := Parse("c.yaml", []byte("stages:\n  - {type: select, meters: [cpu]}\n"))
	require.NoError(t, err)
	_, sn := Get(f.Root, "stages")
	inline, err := f.Stages(sn, "stages")
	require.NoError(t, err)

	var b bytes.Buffer
	require.NoError(t, WriteConfig(&b, &v, f, inline, ""))
	require.Equal(t, "a: x\nb:\n  - 1\nstages:\n  - meters:\n      - cpu\n    type: select\n", b.String())

	sf := filepath.Join(t.TempDir(), "stages.yaml")
	require.NoError(t, os.WriteFile(sf, []byte("- {type: unit}\n"), 0o600))
	b.Reset()
	require.NoError(t, WriteConfig(&b, &v, f, nil, sf))
	require.Equal(t, "a: x\nb:\n  - 1\n# stages read from "+sf+"\nstages:\n  - type: unit\n", b.String())

	b.Reset()
	require.NoError(t, WriteConfig(&b, &v, nil, nil, ""))
	require.Equal(t, "a: x\nb:\n  - 1\n", b.String())
}
