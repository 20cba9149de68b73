package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// stagesYAML is a stage file of two stages both binaries have.
const stagesYAML = `- type: select
  meters: ["*", "!synthetic.*"]
- type: unit
  name: to-mib
  meters: [memory.used]
  from: B
  to: MiB
`

// With -stages FILE, -print-config prints the stages the file holds, not
// its path: the output, saved as a config file, passes -check, decodes
// (strictly) to the same stages, and prints again the same. For both
// binaries.
func TestPrintConfigShowsTheStagesOfTheStageFile(t *testing.T) {
	bins := t.TempDir()
	for _, name := range []string{"agent", "publisher"} {
		t.Run(name, func(t *testing.T) {
			bin := build(t, bins, name)
			run := func(args ...string) (int, string, string) {
				t.Helper()
				var stdout, stderr bytes.Buffer
				cmd := exec.Command(bin, args...)
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return ee.ExitCode(), stdout.String(), stderr.String()
				}
				require.NoError(t, err)
				return 0, stdout.String(), stderr.String()
			}
			dir := t.TempDir()
			stagesFile := filepath.Join(dir, "stages.yaml")
			require.NoError(t, os.WriteFile(stagesFile, []byte(stagesYAML), 0o600))

			code, printed, stderr := run("-stages", stagesFile, "-print-config")
			require.Equal(t, 0, code, stderr)
			require.NotContains(t, printed, "stages_file", "the path printed instead of the stages")
			require.Contains(t, printed, "# stages read from "+stagesFile+"\nstages:\n")

			var want []any
			require.NoError(t, yaml.Unmarshal([]byte(stagesYAML), &want))
			var got struct {
				Stages []any `yaml:"stages"`
			}
			require.NoError(t, yaml.Unmarshal([]byte(printed), &got))
			require.Equal(t, want, got.Stages)

			saved := filepath.Join(dir, "printed.yaml")
			require.NoError(t, os.WriteFile(saved, []byte(printed), 0o600))
			code, out, stderr := run("-config", saved, "-check")
			require.Equal(t, 0, code, "%s\n%s", printed, stderr)
			require.Equal(t, saved+": ok\n", out)
			code, again, stderr := run("-config", saved, "-print-config")
			require.Equal(t, 0, code, stderr)
			var gotAgain struct {
				Stages []any `yaml:"stages"`
			}
			require.NoError(t, yaml.Unmarshal([]byte(again), &gotAgain))
			require.Equal(t, want, gotAgain.Stages)
			require.NotContains(t, again, "# stages read from", "stages inline in the file have no note")

			// A stage file that cannot be read is a config error, as it is
			// for -check and the start.
			code, _, stderr = run("-stages", filepath.Join(dir, "missing.yaml"), "-print-config")
			require.Equal(t, 2, code)
			require.Contains(t, stderr, "stages_file: open "+filepath.Join(dir, "missing.yaml")+": no such file or directory")
		})
	}
}
