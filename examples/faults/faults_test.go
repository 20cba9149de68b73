package faults

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every wait is bounded by this; the scenarios take a fraction of it.
const patience = 60 * time.Second

// runID names one run of the synthetic driver, unique per test and count.
func runID(t *testing.T) string {
	return fmt.Sprintf("%s-%s", t.Name(), strconv.FormatInt(time.Now().UnixNano(), 36))
}

// waitFlowing waits until the store received at least n more events of run
// than it had.
func (h *harness) waitFlowing(run string, n int) {
	h.t.Helper()
	base := received(h.store, run)
	require.Eventually(h.t, func() bool { return received(h.store, run) >= base+n },
		patience, 20*time.Millisecond, "no measurements of run %s reach the store", run)
}

// finish stops the agent (it drains and must end with everything
// acknowledged), then the publishers (they drain their spools into the
// store), and checks that the store holds each of the agent's measurements
// exactly once. It returns the tally.
func (h *harness) finish(agent *proc, run string, publishers []*proc, faults ...window) tally {
	h.t.Helper()
	h.stop(agent)
	n := agentProduced(h.t, agent)
	if st := stats(h.t, agent); st["Resent"] > 0 {
		h.t.Logf("%s resent %d times", agent.name, st["Resent"])
	}
	for _, p := range publishers {
		h.stop(p)
		st := stats(h.t, p)
		h.t.Logf("%s: spooled %d, written %d, duplicate envelopes %d, sink errors %d, pending %d",
			p.name, st["Spooled"], st["Written"], st["Duplicates"], st["SinkErrors"], st["Pending"])
	}
	c := count(h.store.Events(), run, int(n), faults...)
	h.t.Logf("run %s: agent produced %d; store %v", run, n, c)
	require.Positive(h.t, n)
	require.Zero(h.t, c.lost, "lost: %v", c)
	require.Zero(h.t, c.duplicated, "duplicated: %v", c)
	require.Zero(h.t, c.outside, "values outside 1..%d: %v", n, c)
	require.Equal(h.t, int(n), c.received)
	return c
}

// 1. The publisher is killed with SIGKILL twice while the agent sends, and
// restarted each time with the same spool.
func TestPublisherKilledTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes for seconds")
	}
	h := newHarness(t)
	port := freePort(t)
	pubSpool, agentSpool := filepath.Join(h.dir, "publisher.spool"), filepath.Join(h.dir, "agent.spool")
	run := runID(t)

	pub := h.startPublisher("publisher", port, pubSpool)
	agent := h.startAgent("agent", run, agentSpool, port)
	h.waitFlowing(run, 1000)
	var faults []window
	for i := range 2 {
		sleep(time.Second)
		from := time.Now()
		h.kill(pub)
		sleep(500 * time.Millisecond)
		pub = h.startPublisher(fmt.Sprintf("publisher-%d", i+2), port, pubSpool)
		faults = append(faults, window{from, time.Now()})
		h.waitFlowing(run, 1000)
	}
	sleep(time.Second)
	c := h.finish(agent, run, []*proc{pub}, faults...)
	t.Logf("publisher killed twice: %d measurements made while it was down", c.during)
}

// 2. The network between agent and publisher is cut for 3 s (live
// connections closed, new ones refused) while the agent makes about 4,000
// measurements a second; its spool holds them until the network is back.
func TestNetworkCut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes for seconds")
	}
	h := newHarness(t)
	port := freePort(t)
	px := newProxy(t, fmt.Sprintf("127.0.0.1:%d", port))
	run := runID(t)

	pub := h.startPublisher("publisher", port, filepath.Join(h.dir, "publisher.spool"))
	agent := h.startAgent("agent", run, filepath.Join(h.dir, "agent.spool"), px.Port())
	h.waitFlowing(run, 1000)
	sleep(time.Second)

	from := time.Now()
	px.Cut()
	t.Logf("%s network cut", h.now())
	sleep(500 * time.Millisecond) // what was in flight lands
	before := received(h.store, run)
	sleep(2500 * time.Millisecond)
	require.Equal(t, before, received(h.store, run), "nothing reaches the store while the network is cut")
	px.Restore()
	cut := window{from, time.Now()}
	t.Logf("%s network restored", h.now())
	h.waitFlowing(run, 1000)
	sleep(time.Second)

	c := h.finish(agent, run, []*proc{pub}, cut)
	t.Logf("network cut for %v: %d measurements made meanwhile", cut.to.Sub(cut.from).Round(time.Millisecond), c.during)
}
