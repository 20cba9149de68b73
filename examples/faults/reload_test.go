package faults

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// 7. SIGHUP during a numbered stream, each binary running from its config
// file: first with good files (the publisher gains a sink, the agent's host
// driver gets another interval and the agent a stage; the numbered
// instance is unchanged, so it keeps running and counting), then with
// files that are refused (the agent's does not decode, the publisher's
// changes a key that needs a restart) while the running config goes on.
// Every numbered measurement reaches the store once. Unlike the others, it
// runs from config files, without the harness's stage files.
func TestSIGHUPReloadDuringANumberedStream(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes for seconds")
	}
	h := newHarness(t)
	port := freePort(t)
	run := runID(t)
	const limit = 30000 // about 7.5 s at 4,000 a second
	agentConf, pubConf := filepath.Join(h.dir, "agent.yaml"), filepath.Join(h.dir, "publisher.yaml")
	fileSink := filepath.Join(h.dir, "added.jsonl")

	pubFile := func(listen int, extra string) string {
		return fmt.Sprintf(`listen: tcp://127.0.0.1:%d
spool: %s
stats_every: 0s
sinks:
  - name: store
    url: riemann://127.0.0.1:%s?receipts=10m
%s`, listen, filepath.Join(h.dir, "publisher.spool"), h.store.Port(), extra)
	}
	agentFile := func(loadInterval, stages string) string {
		return fmt.Sprintf(`publishers:
  connect: [tcp://127.0.0.1:%d]
id: %s
spool: %s
batch: {size: 100, age: 50ms}
stats_every: 0s
drivers:
  - name: numbered
    type: synthetic
    interval: 50ms
    settings: {per_collection: 200, run: %q, limit: %d}
  - type: load
    interval: %s
%s`, port, h.agentID, filepath.Join(h.dir, "agent.spool"), run, limit, loadInterval, stages)
	}
	write := func(path, content string) {
		t.Helper()
		tmp := path + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
		require.NoError(t, os.Rename(tmp, path)) // as an editor saves it
	}
	write(pubConf, pubFile(port, ""))
	write(agentConf, agentFile("1s", ""))

	pub := h.start("publisher", h.pubBin, "-config", pubConf)
	agent := h.start("agent", h.agentBin, "-config", agentConf)
	h.waitFlowing(run, 2000)
	loadBefore := loadEvents(h)

	// Good files: a sink added, the host driver's interval changed, a stage added.
	write(pubConf, pubFile(port, fmt.Sprintf("  - name: file\n    url: console://%s?format=json\n", fileSink)))
	write(agentConf, agentFile("100ms", "stages:\n  - type: select\n    meters: [\"synthetic.*\", \"load.*\"]\n"))
	hup := func(p *proc) { require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP)) }
	hup(pub)
	hup(agent)
	h.t.Logf("%s SIGHUP with good files", h.now())
	waitLog(t, pub, "change=\"sinks: file: added\"")
	waitLog(t, agent, "change=\"drivers: load: interval 100ms")
	waitLog(t, agent, "change=\"stages: select (was none)\"")
	waitLog(t, agent, "driver schedule changed")
	require.NotContains(t, agent.out.String(), "driver replaced", "the numbered instance is not rebuilt")
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(fileSink)
		return strings.Count(string(b), `"synthetic.seq"`) >= 1000
	}, patience, 50*time.Millisecond, "the added sink is written")
	// At 1 s, 15 collections would take 15 s.
	require.Eventually(t, func() bool { return loadEvents(h)-loadBefore >= 15 }, 4*time.Second, 50*time.Millisecond,
		"the load driver runs every 100 ms now")

	// Refused files: the agent's does not decode, the publisher's changes
	// its listen address. Both go on with the running config.
	write(agentConf, agentFile("100ms", "stages: [\n"))
	write(pubConf, pubFile(freePort(t), ""))
	hup(pub)
	hup(agent)
	h.t.Logf("%s SIGHUP with refused files", h.now())
	waitLog(t, agent, "SIGHUP: config not reloaded")
	waitLog(t, pub, "SIGHUP: config not reloaded")
	require.Contains(t, pub.out.String(), "changed keys need a restart: listen")
	h.waitFlowing(run, 2000)
	inFile := func() int { b, _ := os.ReadFile(fileSink); return strings.Count(string(b), `"synthetic.seq"`) }
	n := inFile()
	require.Eventually(t, func() bool { return inFile() > n }, patience, 50*time.Millisecond, "the added sink still runs")

	require.Eventually(t, func() bool { return received(h.store, run) >= limit }, patience, 50*time.Millisecond,
		"the whole run reaches the store")
	h.stop(agent)
	require.Contains(t, agent.out.String(), "everything collected was acknowledged")
	h.stop(pub)
	c := count(h.store.Events(), run, limit)
	h.t.Logf("run %s: %v", run, c)
	require.Zero(t, c.lost, "lost: %v", c)
	require.Zero(t, c.duplicated, "duplicated: %v", c)
	require.Zero(t, c.outside, "outside: %v", c)
	require.Equal(t, limit, c.received)

	// Started again without the added sink: its spool lane is kept,
	// reported at start and on /metrics.
	web := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	write(pubConf, pubFile(port, "")+"http: "+web+"\n")
	pub2 := h.start("publisher-2", h.pubBin, "-config", pubConf)
	waitLog(t, pub2, "the spool holds a lane of a sink no longer configured")
	require.Contains(t, pub2.out.String(), "sink=file")
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + web + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	}, patience, 50*time.Millisecond)
	require.Contains(t, body, "meterkit_sink_detached{sink=\"file\"} 1\n")
	require.Contains(t, body, "meterkit_sink_detached{sink=\"store\"} 0\n")
	h.stop(pub2)
}

// waitLog waits until p logged a line containing s.
func waitLog(t *testing.T, p *proc, s string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(p.out.String(), s) }, patience, 20*time.Millisecond,
		"%s logs %q", p.name, s)
}

// loadEvents counts the store's load.1 events.
func loadEvents(h *harness) int {
	n := 0
	for _, e := range h.store.Events() {
		if e.Service == "load.1" {
			n++
		}
	}
	return n
}
