package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// earlierRelease is the last commit whose publisher reads envelope version
// 1 only: the release before version 2 (the state field).
const earlierRelease = "562129a"

// buildAt compiles the named example as it was at commit rev into dir, from
// the git repository this checkout is; it skips the test when there is
// none (a copy of the module without its history).
func buildAt(t *testing.T, dir, rev, name string) string {
	t.Helper()
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("needs the git history of the module to build %s at %s: %v", name, rev, err)
	}
	src := filepath.Join(dir, "src-"+rev)
	require.NoError(t, os.MkdirAll(src, 0o755))
	archive := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", strings.TrimSpace(string(root)), rev, src)
	out, err := archive.CombinedOutput()
	if err != nil {
		t.Skipf("commit %s is not in this clone (%v): %s", rev, err, out)
	}
	bin := filepath.Join(dir, name+"-"+rev)
	cmd := exec.Command("go", "build", "-o", bin, "./examples/"+name)
	cmd.Dir = src
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "go build %s at %s: %s", name, rev, out)
	return bin
}

// seqLines returns the values of e2e.seq a publisher printed (console sink,
// JSON), and fails unless each carries the label meterkit.state "ok".
func seqLines(t *testing.T, out *lines) []float64 {
	t.Helper()
	out.mu.Lock()
	defer out.mu.Unlock()
	var vs []float64
	for _, l := range out.all {
		var m struct {
			Name   string            `json:"name"`
			Value  float64           `json:"value"`
			Labels map[string]string `json:"labels"`
		}
		if json.Unmarshal([]byte(l), &m) != nil || m.Name != "e2e.seq" {
			continue
		}
		require.Equal(t, "ok", m.Labels["meterkit.state"], "line %s", l)
		vs = append(vs, m.Value)
	}
	return vs
}

// A publisher of the earlier release takes the address of one of this
// release (a rollback), while the agent holds batches it wrote as envelope
// version 2 for the first: that publisher rejects them, the agent sends
// each again as version 1, and every measurement arrives once, at one of
// the two, with its meterkit.state label. The earlier publisher is built
// from the git history.
func TestRollbackToAnEarlierPublisher(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	dir := t.TempDir()
	oldPub := buildAt(t, dir, earlierRelease, "publisher")
	pubBin, agentBin := build(t, dir, "publisher"), build(t, dir, "agent")
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
publishers: {connect: [`+addr+`]}
batch: {age: 20ms}
drivers:
  - {name: seq, type: synthetic, interval: 20ms, settings: {name: e2e.seq, per_collection: 10}}
stages:
  - {type: levels, meters: [e2e.seq], warning: 1e12}
`), 0o600))

	pub, newOut, newErr := start(t, pubBin, "-listen", addr, "-sink", "console://?format=json")
	agent, _, agentErr := start(t, agentBin, "-config", cfg)
	require.Eventually(t, func() bool { return newOut.count(`"e2e.seq"`) >= 100 }, 20*time.Second, 10*time.Millisecond,
		"publisher stderr:\n%s\nagent stderr:\n%s", newErr, agentErr)
	require.NoError(t, pub.Process.Signal(syscall.SIGTERM))
	require.NoError(t, pub.Wait(), "publisher stderr:\n%s", newErr)
	time.Sleep(300 * time.Millisecond) // batches of version 2 wait in the agent's queue

	old, oldOut, oldErr := start(t, oldPub, "-listen", addr, "-sink", "console://?format=json")
	require.Eventually(t, func() bool { return oldOut.count(`"e2e.seq"`) >= 200 }, 20*time.Second, 10*time.Millisecond,
		"earlier publisher stderr:\n%s\nagent stderr:\n%s", oldErr, agentErr)
	require.NoError(t, agent.Process.Signal(syscall.SIGTERM))
	require.NoError(t, agent.Wait(), "agent stderr:\n%s", agentErr)
	require.NoError(t, old.Process.Signal(syscall.SIGTERM))
	require.NoError(t, old.Wait(), "earlier publisher stderr:\n%s", oldErr)

	require.Contains(t, agentErr.String(), "sending such batches again as version 1")
	require.Contains(t, agentErr.String(), "everything collected was acknowledged")
	seen := map[float64]int{}
	first, second := seqLines(t, newOut), seqLines(t, oldOut)
	for _, v := range append(first, second...) {
		seen[v]++
	}
	top := 0.0
	for v, n := range seen {
		require.Equal(t, 1, n, "value %v arrived %d times", v, n)
		top = max(top, v)
	}
	require.Len(t, seen, int(top), "values 1 to %v, none lost", top)
	t.Logf("%d measurements at this release's publisher, %d at the earlier one", len(first), len(second))
}
