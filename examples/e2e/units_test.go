package e2e

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// unitKeys reads a systemd unit file's KEY=VALUE lines, by key, in order.
func unitKeys(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	keys := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: %q", path, line)
		keys[k] = append(keys[k], v)
	}
	require.NoError(t, sc.Err())
	return keys
}

// The units are what the operating guide promises: Type=notify, an
// absolute ExecStart with -config /etc/meterkit/NAME.yaml, reload by
// SIGHUP, no restart on a bad config (exit 2), their own user and state
// directory, and hardening that leaves the agent's drivers their /proc,
// /sys and mount points.
func TestUnitFiles(t *testing.T) {
	for _, u := range []struct{ file, bin, config, state string }{
		{"../agent/meter-agent.service", "/usr/local/bin/meter-agent", "/etc/meterkit/agent.yaml", "meterkit/agent"},
		{"../publisher/meter-publisher.service", "/usr/local/bin/meter-publisher", "/etc/meterkit/publisher.yaml", "meterkit/publisher"},
	} {
		k := unitKeys(t, u.file)
		one := func(key string) string {
			require.Len(t, k[key], 1, "%s: %s", u.file, key)
			return k[key][0]
		}
		require.Equal(t, "notify", one("Type"))
		require.Equal(t, u.bin+" -config "+u.config, one("ExecStart"))
		require.Equal(t, "/bin/kill -HUP $MAINPID", one("ExecReload"))
		require.Equal(t, "2", one("RestartPreventExitStatus"))
		require.Equal(t, "on-failure", one("Restart"))
		require.Equal(t, "meterkit", one("User"))
		require.Equal(t, u.state, one("StateDirectory"))
		require.Equal(t, "strict", one("ProtectSystem"))
		require.Equal(t, "yes", one("NoNewPrivileges"))
		require.Equal(t, "multi-user.target", one("WantedBy"))
	}
	agent := unitKeys(t, "../agent/meter-agent.service")
	require.Equal(t, []string{"read-only"}, agent["ProtectHome"], "the filesystem driver reads mount points under /home")
	require.NotContains(t, agent, "ProtectProc", "the processes driver reads other processes")
	require.NotContains(t, agent, "ProcSubset")
}
