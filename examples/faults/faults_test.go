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

// waitHeld waits, after the store was stalled, until it holds a write: the
// publisher has handed it a batch and waits for the answer. A fixed sleep
// here was too short on a loaded machine.
func (h *harness) waitHeld() {
	h.t.Helper()
	require.Eventually(h.t, func() bool { return h.store.Held() > 0 },
		patience, time.Millisecond, "the stalled store never got a write to hold")
	sleep(50 * time.Millisecond) // let another in-flight write or two join it
}

// waitCaughtUp waits until the newest measurement of run in the store is
// less than a second old: the agent and publishers have no backlog left, so
// the agent's drain at SIGTERM is short.
func (h *harness) waitCaughtUp(run string) {
	h.t.Helper()
	require.Eventually(h.t, func() bool {
		var newest time.Time
		for _, e := range h.store.Events() {
			if e.Service == "synthetic.seq" && e.Attributes["run"] == run && e.Time.After(newest) {
				newest = e.Time
			}
		}
		return time.Since(newest) < time.Second
	}, patience, 100*time.Millisecond, "the store catches up with run %s", run)
}

// finish stops the agent (it drains and must end with everything
// acknowledged), then the publishers (they drain their spools into the
// store), and checks that the store holds each of the agent's measurements
// once at least. It returns the tally: the caller checks duplicates.
func (h *harness) finish(agent *proc, run string, publishers []*proc, faults ...window) tally {
	h.t.Helper()
	h.waitCaughtUp(run)
	h.stop(agent)
	n := agentProduced(h.t, agent)
	if st := stats(h.t, agent); st["Resent"] > 0 {
		h.t.Logf("%s resent %d times", agent.name, st["Resent"])
	}
	for _, p := range publishers {
		h.stop(p)
		st := stats(h.t, p)
		h.t.Logf("%s: spooled %d, written %d, duplicate envelopes %d, sink errors %d, pending %d, reconciled %d, resent in doubt %d",
			p.name, st["Spooled"], st["Written"], st["Duplicates"], st["SinkErrors"], st["Pending"], st["Reconciled"], st["ResentInDoubt"])
		require.Zero(h.t, st["ResentInDoubt"], "%s keeps receipts: nothing is resent blindly", p.name)
	}
	c := count(h.store.Events(), run, int(n), faults...)
	h.t.Logf("run %s: agent produced %d; store %v; batches found stored by receipts after a fault: %d", run, n, c, h.reconciled())
	require.Positive(h.t, n)
	require.Zero(h.t, c.lost, "lost: %v", c)
	require.Zero(h.t, c.outside, "values outside 1..%d: %v", n, c)
	require.Equal(h.t, int(n)+c.duplicated, c.received)
	derivedOnce(h.t, h.store.Events(), run)
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
	var restarted []*proc
	for i := range 2 {
		sleep(time.Second)
		from := time.Now()
		h.kill(pub)
		sleep(500 * time.Millisecond)
		pub = h.startPublisher(fmt.Sprintf("publisher-%d", i+2), port, pubSpool)
		restarted = append(restarted, pub)
		faults = append(faults, window{from, time.Now()})
		h.waitFlowing(run, 1000)
	}
	sleep(time.Second)
	c := h.finish(agent, run, []*proc{pub}, faults...)
	h.noDuplicates(c, restarted)
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
	cutDone := time.Now()
	t.Logf("%s network cut", h.now())
	sleep(3 * time.Second)
	for _, e := range h.store.Events() {
		require.False(t, e.Attributes["run"] == run && e.Time.After(cutDone),
			"a measurement made after the cut reached the store while the network was cut")
	}
	px.Restore()
	cut := window{from, time.Now()}
	t.Logf("%s network restored", h.now())
	h.waitFlowing(run, 1000)
	sleep(time.Second)

	c := h.finish(agent, run, []*proc{pub}, cut)
	require.Zero(t, c.duplicated, "duplicated: %v", c)
	t.Logf("network cut for %v: %d measurements made meanwhile", cut.to.Sub(cut.from).Round(time.Millisecond), c.during)
}

// 3. The agent is killed with SIGKILL while the publisher is down, so its
// spool holds unsent batches; then the publisher starts and the agent is
// restarted with the same spool. Everything of the first run that reached
// the spool arrives, once.
func TestAgentKilledWhilePublisherDown(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes for seconds")
	}
	h := newHarness(t)
	port := freePort(t) // nothing listens there yet
	agentSpool := filepath.Join(h.dir, "agent.spool")
	run1, run2 := runID(t)+"-first", runID(t)+"-second"

	agent1 := h.startAgent("agent", run1, agentSpool, port)
	sleep(1500 * time.Millisecond)
	h.kill(agent1)
	require.Zero(t, received(h.store, run1))

	pub := h.startPublisher("publisher", port, filepath.Join(h.dir, "publisher.spool"))
	agent2 := h.startAgent("agent-restarted", run2, agentSpool, port)
	var spooled int
	require.Eventually(t, func() bool {
		m := spooledRE.FindStringSubmatch(agent2.out.String())
		if m == nil {
			return false
		}
		spooled, _ = strconv.Atoi(m[1])
		return true
	}, patience, 10*time.Millisecond, "the restarted agent reports the batches left in its spool")
	require.Positive(t, spooled)
	require.Eventually(t, func() bool { return received(h.store, run1)+derived(h.store.Events(), run1) >= spooled },
		patience, 20*time.Millisecond, "the first run's spooled measurements arrive")
	h.waitFlowing(run2, 1000)
	sleep(time.Second)
	c2 := h.finish(agent2, run2, []*proc{pub})
	require.Zero(t, c2.duplicated, "duplicated: %v", c2)

	// kill -9 may legitimately lose the first run's last partial batch, the
	// one still being filled in memory: only the tail of the run may be
	// missing (every batch made is in the spool before it is sent). So what
	// arrived must be exactly 1..M with M > 0, and M is what the spool held,
	// since the publisher never acknowledged anything of the first run.
	c := count(h.store.Events(), run1, 0)
	t.Logf("first run %s, killed: store %v; the spool held %d", run1, c, spooled)
	require.Positive(t, c.max)
	require.Zero(t, c.lost, "gap in the first run: %v", c)
	require.Zero(t, c.duplicated, "duplicated: %v", c)
	require.Zero(t, c.outside, "%v", c)
	require.Equal(t, spooled, c.received+derived(h.store.Events(), run1), "all that the spool held arrived, once")
	derivedOnce(t, h.store.Events(), run1)
}

// 4. The store goes down for 2 s (it closes its listener and every
// connection) and comes back. The publisher spools, so the agent keeps being
// acknowledged; the publisher retries the store with backoff.
//
// The store crashes while it holds a write: it keeps the batch and never
// answers (riemanntest's Crash). The publisher sees its connection fail, so
// the batch is in doubt; when the store is back, the receipt the batch
// carried says the store has it, and the publisher does not write it again.
func TestStoreDown(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes for seconds")
	}
	h := newHarness(t)
	port := freePort(t)
	run := runID(t)

	pub := h.startPublisher("publisher", port, filepath.Join(h.dir, "publisher.spool"))
	agent := h.startAgent("agent", run, filepath.Join(h.dir, "agent.spool"), port)
	h.waitFlowing(run, 1000)
	sleep(time.Second)

	from := time.Now()
	h.store.Stall(0)
	h.waitHeld() // the publisher's write is now held
	h.store.Crash()
	t.Logf("%s store crashed", h.now())
	sleep(1900 * time.Millisecond)
	h.store.Release()
	require.NoError(t, h.store.Start())
	down := window{from, time.Now()}
	t.Logf("%s store started", h.now())
	h.waitFlowing(run, 1000)
	sleep(time.Second)

	c := h.finish(agent, run, []*proc{pub}, down)
	require.Zero(t, c.duplicated, "duplicated: %v", c)
	require.Contains(t, pub.out.String(), "sink write failed; will retry", "the publisher noticed the store was down")
	require.Positive(t, stats(t, pub)["Reconciled"], "the batch the store took as it crashed was found by its receipt")
	require.NotContains(t, agent.out.String(), "send failed", "the agent was acknowledged all along")
	t.Logf("store down for %v: %d measurements made meanwhile", down.to.Sub(down.from).Round(time.Millisecond), c.during)
}

// 5. Two publishers, each with its own spool, write to the same store; the
// agent connects to both. The one that carries the stream (the agent's REQ
// socket sticks to the pipe that answered last) is killed with SIGKILL: the
// agent goes on with the other. The killed one is restarted later and drains
// what its spool held.
func TestFailoverToSecondPublisher(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes for seconds")
	}
	h := newHarness(t)
	ports := []int{freePort(t), freePort(t)}
	spools := []string{filepath.Join(h.dir, "a.spool"), filepath.Join(h.dir, "b.spool")}
	names := []string{"publisher-a", "publisher-b"}
	run := runID(t)

	pubs := []*proc{h.startPublisher(names[0], ports[0], spools[0]), h.startPublisher(names[1], ports[1], spools[1])}
	agent := h.startAgent("agent", run, filepath.Join(h.dir, "agent.spool"), ports...)
	h.waitFlowing(run, 1000)
	require.Eventually(t, func() bool { return connections(t, ports[0]) > 0 && connections(t, ports[1]) > 0 },
		patience, 20*time.Millisecond, "the agent connects to both publishers")

	// Which publisher carries the stream? Its spool file is written for
	// every batch; the other's is not written at all.
	file := func(i int) string { return filepath.Join(spools[i], "publisher.spool") }
	var active int
	require.Eventually(t, func() bool {
		m0, m1 := modTime(t, file(0)), modTime(t, file(1))
		sleep(300 * time.Millisecond)
		c0, c1 := !modTime(t, file(0)).Equal(m0), !modTime(t, file(1)).Equal(m1)
		active = 0
		if c1 {
			active = 1
		}
		return c0 != c1
	}, patience, time.Millisecond, "exactly one publisher carries the stream")
	other := 1 - active
	t.Logf("%s %s carries the stream", h.now(), names[active])
	sleep(500 * time.Millisecond)

	from := time.Now()
	h.kill(pubs[active])
	h.waitFlowing(run, 4000) // through the other publisher alone
	sleep(500 * time.Millisecond)
	pubs[active] = h.startPublisher(names[active]+"-restarted", ports[active], spools[active])
	down := window{from, time.Now()}
	h.waitFlowing(run, 1000)
	sleep(time.Second)

	c := h.finish(agent, run, pubs, down)
	h.noDuplicates(c, []*proc{pubs[active]})
	took := stats(t, pubs[other])["Spooled"] // the rates and deltas too
	all := c.received + derived(h.store.Events(), run)
	t.Logf("%s down for %v: %d measurements made meanwhile; %s took %d of %d",
		names[active], down.to.Sub(down.from).Round(time.Millisecond), c.during, names[other], took, all)
	require.Positive(t, took, "the agent failed over")
	require.Less(t, took, uint64(all), "the killed publisher carried the start of the stream")
}

// 6. The publisher is killed with SIGKILL while the store holds its write
// (taken, not yet answered); the store then handles it. The restarted
// publisher finds the batch in its spool, in doubt, and the receipt that
// came with it says the store has it: it is not written again.
func TestPublisherKilledWhileStoreHoldsItsWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes for seconds")
	}
	h := newHarness(t)
	port := freePort(t)
	pubSpool := filepath.Join(h.dir, "publisher.spool")
	run := runID(t)

	pub := h.startPublisher("publisher", port, pubSpool)
	agent := h.startAgent("agent", run, filepath.Join(h.dir, "agent.spool"), port)
	h.waitFlowing(run, 1000)
	sleep(500 * time.Millisecond)

	from := time.Now()
	h.store.Stall(0)
	h.waitHeld() // the publisher waits for the store's answer
	h.kill(pub)
	h.store.Release() // the store handles the write of a dead publisher
	sleep(300 * time.Millisecond)
	pub = h.startPublisher("publisher-2", port, pubSpool)
	down := window{from, time.Now()}
	h.waitFlowing(run, 1000)
	sleep(time.Second)

	c := h.finish(agent, run, []*proc{pub}, down)
	h.noDuplicates(c, []*proc{pub})
	require.Positive(t, stats(t, pub)["Reconciled"], "the restarted publisher found its last write stored, by its receipt")
	t.Logf("publisher killed mid-write: %d measurements made while it was down; %d found stored by receipt",
		c.during, stats(t, pub)["Reconciled"])
}
