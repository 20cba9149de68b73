//go:build integration

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// systemd-analyze verify (with --recursive-errors=no, or it exits 0 on an
// unknown key) passes on both units in a throw-away root holding the
// binaries at their ExecStart paths, and security --offline rates them
// better than 2.0 (OK or better).
func TestUnitsVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	require.NoError(t, err, "Debian: apt-get install -y systemd")
	root := t.TempDir()
	for _, d := range []string{"etc/systemd/system", "usr/lib/systemd", "usr/local/bin", "bin"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	kill, err := exec.LookPath("kill")
	require.NoError(t, err)
	out, err = exec.Command("install", "-m", "0755", kill, filepath.Join(root, "bin/kill")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, u := range []struct{ name, example, unit string }{
		{"meter-agent", "agent", "../agent/meter-agent.service"},
		{"meter-publisher", "publisher", "../publisher/meter-publisher.service"},
	} {
		build(t, filepath.Join(root, "usr/local/bin"), u.example)
		require.NoError(t, os.Rename(filepath.Join(root, "usr/local/bin", u.example), filepath.Join(root, "usr/local/bin", u.name)))
		b, err := os.ReadFile(u.unit)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(root, "etc/systemd/system", u.name+".service"), b, 0o644))

		out, err := exec.Command(sa, "verify", "--recursive-errors=no", "--root="+root, u.name+".service").CombinedOutput()
		require.NoError(t, err, "systemd-analyze verify %s: %s", u.name, out)
		require.Empty(t, string(out), "systemd-analyze verify %s", u.name)
		out, err = exec.Command(sa, "security", "--offline=yes", "--root="+root, "--threshold=20", u.name+".service").CombinedOutput()
		require.NoError(t, err, "systemd-analyze security %s: %s", u.name, out)
		t.Logf("%s: %s", u.name, lastLine(out))
	}
}

func lastLine(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			return string(b[i+1:])
		}
	}
	return string(b)
}
