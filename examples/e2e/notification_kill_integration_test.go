//go:build integration

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

var pushDuplicatesRE = regexp.MustCompile(`PushDuplicates:(\d+)`)

// TestNotificationAgentSIGKILLedLosesAndDuplicatesNothing runs the
// reference agent with the notification driver and a spool, and the
// reference publisher with a console sink (the counting store), against a
// real RabbitMQ fed by oslo.messaging's Notifier. The agent is SIGKILLed
// twice, at points the agent's test hook (METERKIT_AGENT_TEST_HOLD) holds
// deliveries at: after receiving and before the agent has them, then after
// the agent committed them to its spool and before the ack reaches the
// broker. Every notification reaches the store once: none lost, none
// duplicated; the redeliveries of committed ones are recognised by the
// spool's keys (Stats.PushDuplicates), and a garbage message in front does
// not stop those behind it.
func TestNotificationAgentSIGKILLedLosesAndDuplicatesNothing(t *testing.T) {
	r := startRabbitNode(t)
	dir := t.TempDir()
	pubBin, agentBin := build(t, dir, "publisher"), build(t, dir, "agent")
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	pub, pubOut, pubErr := start(t, pubBin, "-listen", addr, "-sink", "console://?format=json")

	const queue = "meterkit-kill-test"
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
publishers:
  connect: [%s]
id: compute-01
spool: %s
batch: {size: 100, age: 50ms}
stats_every: 0s
drivers:
  - name: bus
    type: notification
    settings:
      url: %s
      queue: %s
      exchanges: [nova]
      retry_interval: 200ms
`, addr, filepath.Join(dir, "spool"), r.url(), queue)), 0o600))

	// Check: the same file without the spool is refused.
	noSpool := filepath.Join(dir, "nospool.yaml")
	b, _ := os.ReadFile(cfg)
	require.NoError(t, os.WriteFile(noSpool, regexp.MustCompile(`(?m)^spool: .*$`).ReplaceAll(b, nil), 0o600))
	out, err := exec_(agentBin, "-config", noSpool, "-check")
	require.Error(t, err)
	require.Contains(t, out, `driver "bus" (type notification) requires a spool`)

	// The services create their exchange; the agent binds its queue to it.
	require.NoError(t, r.channel(t).ExchangeDeclare("nova", "topic", false, false, false, false, nil))
	runAgent := func(hold string) (stop func(sig syscall.Signal), errOut *lines) {
		cmd := agentCmd(t, agentBin, hold, "-config", cfg)
		out, wait := startCmd(t, cmd)
		require.Eventually(t, func() bool { _, c, ok := r.queue(t, queue); return ok && c == 1 },
			30*time.Second, 50*time.Millisecond, "the agent consumes from its queue:\n%s", out)
		return func(sig syscall.Signal) {
			require.NoError(t, cmd.Process.Signal(sig))
			wait()
		}, out
	}
	ids := instanceIDs(7)

	// 1. Killed after receiving, before the agent has them: 2 delivered,
	// 3 held. A garbage message goes first.
	stop, errOut := runAgent("deliver:2")
	r.publishRaw(t, "nova", []byte(`{"oslo.version": "2.0", "oslo.message": "{not json"}`))
	var notes []novaNote
	for _, id := range ids[:5] {
		notes = append(notes, instanceExists(id))
	}
	r.publishOslo(t, notes...)
	require.Eventually(t, func() bool { return errOut.count("test hold: delivery held") == 3 }, 30*time.Second, 20*time.Millisecond, "%s", errOut)
	require.Equal(t, 1, errOut.count("malformed notification; rejected"), "%s", errOut)
	stop(syscall.SIGKILL)
	t.Logf("killed after receiving 3 notifications before the agent had them")

	// 2. Killed after committing, before acking: the 3 come again (not
	// committed before, so stored now) with 2 new ones; all 5 are committed
	// to the spool, and no ack reaches the broker.
	stop, errOut = runAgent("ack:0")
	notes = nil
	for _, id := range ids[5:] {
		notes = append(notes, instanceExists(id))
	}
	r.publishOslo(t, notes...)
	require.Eventually(t, func() bool { return errOut.count("test hold: ack held after the agent stored the delivery") == 5 },
		30*time.Second, 20*time.Millisecond, "%s", errOut)
	require.Equal(t, 5, errOut.count("err=<nil>"), "all 5 durable in the spool:\n%s", errOut)
	stop(syscall.SIGKILL)
	t.Logf("killed after committing 5 notifications before acking them")

	// 3. A plain run: the 5 come again, are recognised by the spool's keys
	// and acknowledged without being stored again.
	stop, errOut = runAgent("")
	require.Eventually(t, func() bool {
		got := stored(pubOut)
		for _, id := range ids {
			if len(got[id]) != 1 {
				return false
			}
		}
		msgs, _, _ := r.queue(t, queue)
		return msgs == 0
	}, 30*time.Second, 50*time.Millisecond, "publisher:\n%s\nagent:\n%s", pubErr, errOut)
	time.Sleep(500 * time.Millisecond) // let a late duplicate show
	stop(syscall.SIGTERM)
	got := stored(pubOut)
	for _, id := range ids {
		require.Len(t, got[id], 1, "instance %s: one notification", id)
		for mid, n := range got[id] {
			require.Equal(t, 4, n, "instance %s, message %s: instance, memory, vcpus, disk.root.size once each", id, mid)
		}
	}
	require.Len(t, got, len(ids), "nothing else stored")
	m := pushDuplicatesRE.FindStringSubmatch(errOut.String())
	require.NotNil(t, m, "%s", errOut)
	dups, _ := strconv.Atoi(m[1])
	require.Equal(t, 5, dups, "the 5 redeliveries of committed notifications recognised")
	msgs, consumers, ok := r.queue(t, queue)
	require.True(t, ok)
	require.Zero(t, msgs, "every message acknowledged")
	require.Zero(t, consumers)

	require.NoError(t, pub.Process.Signal(syscall.SIGTERM))
	require.NoError(t, pub.Wait(), "%s", pubErr)
}
