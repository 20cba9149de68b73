package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// With self_metrics: in its file, the reference agent sends its own
// counters as meterkit.agent.* measurements, which reach the store, and
// the acknowledged count they carry grows.
func TestAgentSendsItsOwnCounters(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	dir := t.TempDir()
	pubBin, agentBin := build(t, dir, "publisher"), build(t, dir, "agent")
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
publishers: {connect: [`+addr+`]}
batch: {age: 100ms}
self_metrics: 300ms
drivers:
  - {name: seq, type: synthetic, interval: 100ms, settings: {per_collection: 5}}
`), 0o600))

	pub, pubOut, pubErr := start(t, pubBin, "-listen", addr, "-sink", "console://?format=json")
	agent, _, agentErr := start(t, agentBin, "-config", cfg)
	acked := regexp.MustCompile(`"name":"meterkit.agent.acked","kind":"cumulative","value":(\d+)`)
	var last int
	require.Eventually(t, func() bool {
		ms := acked.FindAllStringSubmatch(pubOut.String(), -1)
		if len(ms) < 3 {
			return false
		}
		last, _ = strconv.Atoi(ms[len(ms)-1][1])
		return last > 0
	}, 20*time.Second, 50*time.Millisecond, "publisher stdout:\n%s\nagent stderr:\n%s", pubOut, agentErr)
	require.Positive(t, pubOut.count(`"name":"meterkit.agent.queued_bytes","kind":"gauge","unit":"B"`), "publisher stdout:\n%s", pubOut)

	require.NoError(t, agent.Process.Signal(syscall.SIGTERM))
	require.NoError(t, agent.Wait(), "agent stderr:\n%s", agentErr)
	require.NoError(t, pub.Process.Signal(syscall.SIGTERM))
	require.NoError(t, pub.Wait(), "publisher stderr:\n%s", pubErr)
}
