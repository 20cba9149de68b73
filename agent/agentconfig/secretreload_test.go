package agentconfig_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/agent/agentconfig"
)

// A SIGHUP after a secret was rotated in its file rebuilds the instances
// that name the file, which read the new secret; the others, and the same
// instance when the file did not change, keep running.
func TestReloadRebuildsAnInstanceWhoseSecretFileChanged(t *testing.T) {
	dir := t.TempDir()
	community := filepath.Join(dir, "switch.community")
	require.NoError(t, os.WriteFile(community, []byte("old-community\n"), 0o600))
	text := []byte(`
drivers:
  - {name: seq, type: synthetic}
  - name: switch-1
    type: snmp
    settings:
      target: 127.0.0.1:1161
      community_file: ` + community + `
      objects: [{oid: 1.3.6.1.2.1.1.3.0, name: sys.uptime}]
`)
	load := func() *agentconfig.Config {
		t.Helper()
		c, err := agentconfig.Parse(filepath.Join(dir, "a.yaml"), text)
		require.NoError(t, err)
		return c
	}
	byName := func(p *agentconfig.Parts) map[string]agentconfig.Driver {
		m := map[string]agentconfig.Driver{}
		for _, d := range p.Drivers {
			m[d.Name] = d
		}
		return m
	}
	v1 := load()
	p1, err := v1.Open()
	require.NoError(t, err)
	defer p1.Close()

	// The file unchanged (rewritten with the same content): nothing to do.
	require.NoError(t, os.WriteFile(community, []byte("old-community\n"), 0o600))
	same := load()
	p, changes, err := v1.Reload(p1, same)
	require.NoError(t, err)
	require.Empty(t, changes)
	require.Same(t, byName(p1)["switch-1"].Driver, byName(p)["switch-1"].Driver)

	// Rotated: the same config text, another secret in the file.
	require.NoError(t, os.WriteFile(community, []byte("new-community\n"), 0o600))
	v2 := load()
	p2, changes, err := v1.Reload(p1, v2)
	require.NoError(t, err)
	require.Equal(t, []string{"drivers: switch-1: a secret file it names changed (rebuilt)"}, changes)
	require.NotSame(t, byName(p1)["switch-1"].Driver, byName(p2)["switch-1"].Driver, "rebuilt, with the new community")
	defer (&agentconfig.Parts{Drivers: []agentconfig.Driver{byName(p2)["switch-1"]}}).Close()
	require.Same(t, byName(p1)["seq"].Driver, byName(p2)["seq"].Driver, "an instance naming no file keeps running")

	// From v2 on, the rotated file is the running one: no change.
	_, changes, err = v2.Reload(p2, load())
	require.NoError(t, err)
	require.Empty(t, changes)

	// A file made unreadable counts as a change, and the rebuild fails:
	// the reload is refused, naming the file.
	require.NoError(t, os.Chmod(community, 0o644))
	_, _, err = v2.Reload(p2, load())
	require.ErrorContains(t, err, "chmod 600")
}
