package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A key rotated while both run, without -config: SIGHUP makes the
// publisher read its key file again and the agent its own, so that the old
// key can be revoked and the agent goes on delivering, never refused.
func TestKeyRotationBySIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	dir := t.TempDir()
	pubBin, agentBin, ctlBin := build(t, dir, "publisher"), build(t, dir, "agent"), build(t, dir, "meterctl")
	keys, agentKey := filepath.Join(dir, "publisher.keys"), filepath.Join(dir, "acme.key")
	ctl := func(args ...string) {
		t.Helper()
		out, err := exec.Command(ctlBin, append([]string{"-keys", keys}, args...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	ctl("tenant", "create", "acme")
	ctl("key", "export", "-tenant", "acme", "-out", agentKey)

	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	pub, pubOut, pubErr := start(t, pubBin, "-listen", addr, "-keys", keys, "-sink", "console://?format=json")
	agent, _, agentErr := start(t, agentBin, "-connect", addr, "-interval", "100ms", "-drivers", "uptime", "-id", "rotating",
		"-tenant", "acme", "-key-file", agentKey, "-batch-age", "50ms")
	flowing := func(more int) {
		t.Helper()
		base := pubOut.count(`"name":"uptime"`)
		require.Eventually(t, func() bool { return pubOut.count(`"name":"uptime"`) >= base+more },
			20*time.Second, 50*time.Millisecond, "publisher stderr:\n%s\nagent stderr:\n%s", pubErr, agentErr)
	}
	flowing(3)

	// meterctl key rotate; the publisher learns the new key, the agent is given it.
	ctl("key", "rotate", "-tenant", "acme", "-id", "k2")
	require.NoError(t, pub.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return pubErr.count("SIGHUP: key file reloaded") == 1 }, 10*time.Second, 20*time.Millisecond, "%s", pubErr)
	ctl("key", "export", "-tenant", "acme", "-out", agentKey)
	require.NoError(t, agent.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return agentErr.count("SIGHUP: key file reloaded") == 1 && agentErr.count("key=k2") >= 1 },
		10*time.Second, 20*time.Millisecond, "%s", agentErr)
	// The old key revoked: the agent, sealing with k2, is not refused.
	ctl("key", "revoke", "-tenant", "acme", "-id", "k1")
	require.NoError(t, pub.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return pubErr.count("SIGHUP: key file reloaded") == 2 }, 10*time.Second, 20*time.Millisecond, "%s", pubErr)
	flowing(5)
	require.Zero(t, pubErr.count("seal: refused"), "%s", pubErr)
	require.Zero(t, agentErr.count("refuses this agent"), "%s", agentErr)

	require.NoError(t, agent.Process.Signal(syscall.SIGTERM))
	require.NoError(t, agent.Wait(), "%s", agentErr)
	require.NoError(t, pub.Process.Signal(syscall.SIGTERM))
	require.NoError(t, pub.Wait(), "%s", pubErr)
}
