package yamlfile

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedactedStagesAndWrite(t *testing.T) {
	f, err := Parse("s.yaml", []byte("- {type: reloadtally, name: a, token: hush, token_file: /etc/t}\n"))
	require.NoError(t, err)
	specs, err := f.Stages(f.Root, "stages")
	require.NoError(t, err)
	stages, err := RedactedStages(specs)
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, Write(&b, map[string]any{"stages": stages}))
	require.Equal(t, "stages:\n  - name: a\n    token: REDACTED\n    token_file: /etc/t\n    type: reloadtally\n", b.String())
}
