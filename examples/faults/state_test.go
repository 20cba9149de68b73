package faults

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/sink/riemann/riemanntest"
)

// The stateful stages' scenarios: the agent's rate and delta over the
// synthetic driver's counters, and the publisher's aggregate, each killed
// with SIGKILL mid-stream and restarted on its spool.

const slope = 2.5 // the synthetic counters' increase per second

// rateStages: rate and delta of the counters, inputs kept.
const rateStages = `
- type: rate
  meters: ["synthetic.counter"]
  as: synthetic.rate
- type: delta
  meters: ["synthetic.counter"]
  as: synthetic.delta
`

// startCounterAgent starts an agent whose synthetic driver makes 4
// counters (slope 2.5/s) every 50 ms, running rateStages.
func (h *harness) startCounterAgent(name, run, spoolDir, stages string, port int) *proc {
	h.t.Helper()
	conf := filepath.Join(h.dir, "agent-counter.json")
	if _, err := os.Stat(conf); err != nil {
		b, err := json.Marshal(map[string]any{"synthetic": map[string]any{"per_collection": 4, "run": run, "slope": slope, "unit": "B"}})
		require.NoError(h.t, err)
		require.NoError(h.t, os.WriteFile(conf, b, 0o600))
	}
	return h.start(name, h.agentBin, "-connect", fmt.Sprintf("tcp://127.0.0.1:%d", port), "-id", h.agentID,
		"-drivers", "synthetic", "-config", conf, "-interval", "50ms", "-batch", "100", "-batch-age", "50ms",
		"-spool", spoolDir, "-stages", stages)
}

// series is what the store holds of one counter: its points and, by
// time, the rates and deltas made of them.
type series struct {
	points        []time.Time
	rates, deltas map[time.Time][]float64
}

func counterSeries(events []riemanntest.Event, run string) map[string]*series {
	out := map[string]*series{}
	for _, e := range events {
		if e.Attributes["run"] != run {
			continue
		}
		id := e.Attributes["resource_id"]
		s := out[id]
		if s == nil {
			s = &series{rates: map[time.Time][]float64{}, deltas: map[time.Time][]float64{}}
			out[id] = s
		}
		switch e.Service {
		case "synthetic.counter":
			s.points = append(s.points, e.Time)
		case "synthetic.rate":
			s.rates[e.Time] = append(s.rates[e.Time], e.Metric)
		case "synthetic.delta":
			s.deltas[e.Time] = append(s.deltas[e.Time], e.Metric)
		}
	}
	return out
}

// 7. The agent, making rates and deltas of counters, is killed with
// SIGKILL mid-stream twice and restarted on its spool: the stages' state
// goes with the batches, so the first collection of each series after a
// restart is rated against the last point that reached the spool. At the
// store, every point but a series' first has exactly one rate (the slope)
// and one delta, each delta is the slope times the time since the point
// before it in the store (no interval counted twice, none left out), none
// is negative, and the deltas add up to the counter's whole increase.
func TestAgentWithRateKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes for seconds")
	}
	h := newHarness(t)
	stages := filepath.Join(h.dir, "rate-stages.yaml")
	require.NoError(t, os.WriteFile(stages, []byte(rateStages), 0o600))
	port := freePort(t)
	agentSpool := filepath.Join(h.dir, "agent.spool")
	run := runID(t)

	pub := h.start("publisher", h.pubBin, "-listen", fmt.Sprintf("tcp://127.0.0.1:%d", port),
		"-spool", filepath.Join(h.dir, "publisher.spool"), "-sink", "riemann://127.0.0.1:"+h.store.Port()+"?receipts=10m")
	agent := h.startCounterAgent("agent", run, agentSpool, stages, port)
	h.waitCounters(run, 100)
	for i := range 2 {
		sleep(700 * time.Millisecond)
		h.kill(agent)
		sleep(300 * time.Millisecond)
		agent = h.startCounterAgent(fmt.Sprintf("agent-%d", i+2), run, agentSpool, stages, port)
		h.waitCounters(run, 100)
	}
	sleep(500 * time.Millisecond)
	h.stop(agent)
	require.Contains(t, agent.out.String(), "everything collected was acknowledged")
	h.stop(pub)

	all := counterSeries(h.store.Events(), run)
	require.Len(t, all, 4, "four counters")
	for id, s := range all {
		slices.SortFunc(s.points, func(a, b time.Time) int { return a.Compare(b) })
		require.Greater(t, len(s.points), 40, "%s: points", id)
		for i := 1; i < len(s.points); i++ {
			require.True(t, s.points[i].After(s.points[i-1]), "%s: point at %v stored twice", id, s.points[i])
		}
		var sum float64
		for i, at := range s.points {
			r, d := s.rates[at], s.deltas[at]
			if i == 0 {
				require.Empty(t, r, "%s: the first point gives no rate", id)
				require.Empty(t, d, "%s: the first point gives no delta", id)
				continue
			}
			require.Len(t, r, 1, "%s: point %d at %v: one rate", id, i, at)
			require.Len(t, d, 1, "%s: point %d at %v: one delta", id, i, at)
			require.InEpsilon(t, slope, r[0], 1e-4, "%s: rate at %v", id, at)
			want := slope * at.Sub(s.points[i-1]).Seconds()
			require.Positive(t, d[0], "%s: delta at %v", id, at)
			// Store times are microseconds; the counters are nanoseconds.
			require.InDelta(t, want, d[0], slope*3e-6+1e-5,
				"%s: delta at %v is against the point before it in the store (%v)", id, at, s.points[i-1])
			sum += d[0]
		}
		require.Equal(t, len(s.points)-1, len(s.rates), "%s: no rate without its point", id)
		require.Equal(t, len(s.points)-1, len(s.deltas), "%s: no delta without its point", id)
		total := slope * s.points[len(s.points)-1].Sub(s.points[0]).Seconds()
		require.InDelta(t, total, sum, 1e-3, "%s: the deltas add up to the whole increase", id)
		t.Logf("%s: %d points, deltas %.6f of %.6f", id, len(s.points), sum, total)
	}
}

// waitCounters waits until the store holds n more counter points of run.
func (h *harness) waitCounters(run string, n int) {
	h.t.Helper()
	countPoints := func() int {
		c := 0
		for _, e := range h.store.Events() {
			if e.Service == "synthetic.counter" && e.Attributes["run"] == run {
				c++
			}
		}
		return c
	}
	base := countPoints()
	require.Eventually(h.t, func() bool { return countPoints() >= base+n }, patience, 20*time.Millisecond,
		"no counters of run %s reach the store", run)
}

// 8. The publisher, running aggregate (1 s windows, emitted once 6 s
// after their start: a resend after a restart comes well within that), is
// killed with SIGKILL twice while
// the agent sends, and restarted on its spool: its open windows are state,
// committed with the batches, so every window is emitted exactly once (as
// the publisher's own batch), and its sum and count are exactly those of
// the values the store holds for that window; nothing is lost or
// duplicated either.
func TestPublisherWithAggregateKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes for seconds")
	}
	h := newHarness(t) // the publisher stages end with aggregate (publisherStages)
	port := freePort(t)
	pubSpool, agentSpool := filepath.Join(h.dir, "publisher.spool"), filepath.Join(h.dir, "agent.spool")
	run := runID(t)

	pub := h.startPublisher("publisher", port, pubSpool)
	agent := h.startAgent("agent", run, agentSpool, port)
	h.waitFlowing(run, 1000)
	var faults []window
	var restarted []*proc
	for i := range 2 {
		sleep(1500 * time.Millisecond)
		from := time.Now()
		h.kill(pub)
		sleep(300 * time.Millisecond)
		pub = h.startPublisher(fmt.Sprintf("publisher-%d", i+2), port, pubSpool)
		restarted = append(restarted, pub)
		faults = append(faults, window{from, time.Now()})
		h.waitFlowing(run, 1000)
	}
	sleep(time.Second)
	h.waitCaughtUp(run)
	h.stop(agent)
	n := agentProduced(t, agent)
	// Let the last windows close (6 s after their start) before the stop.
	sleep(7500 * time.Millisecond)
	h.stop(pub)
	for _, p := range append(restarted, pub) {
		require.NotContains(t, p.out.String(), "could not restore", "%s", p.name)
	}
	c := count(h.store.Events(), run, int(n), faults...)
	t.Logf("run %s: agent produced %d; store %v", run, n, c)
	derivedOnce(t, h.store.Events(), run)
	require.Zero(t, c.lost, "%v", c)
	require.Zero(t, c.outside, "%v", c)
	h.noDuplicates(c, restarted)

	// What each window holds, from the values in the store.
	type agg struct{ sum, count float64 }
	want := map[int64]agg{}
	for _, e := range h.store.Events() {
		if e.Service == "synthetic.seq" && e.Attributes["run"] == run {
			w := e.Time.Truncate(time.Second).Unix()
			a := want[w]
			a.sum += e.Metric
			a.count++
			want[w] = a
		}
	}
	got := map[int64][]agg{}
	for _, e := range h.store.Events() {
		switch e.Service {
		case "synthetic.seq.sum", "synthetic.seq.count":
		default:
			continue
		}
		require.Equal(t, "publisher.spool", e.Attributes["publisher"], "the aggregate carries the publisher's id (-id)")
		w := e.Time.Unix()
		if len(got[w]) == 0 {
			got[w] = []agg{{math.NaN(), math.NaN()}}
		}
		a := &got[w][len(got[w])-1]
		if e.Service == "synthetic.seq.sum" {
			if !math.IsNaN(a.sum) {
				got[w] = append(got[w], agg{math.NaN(), math.NaN()})
				a = &got[w][len(got[w])-1]
			}
			a.sum = e.Metric
		} else {
			if !math.IsNaN(a.count) {
				got[w] = append(got[w], agg{math.NaN(), math.NaN()})
				a = &got[w][len(got[w])-1]
			}
			a.count = e.Metric
		}
	}
	require.NotEmpty(t, want)
	for w, a := range want {
		g := got[w]
		require.Len(t, g, 1, "window %v emitted once", time.Unix(w, 0))
		require.Equal(t, a.sum, g[0].sum, "window %v: sum", time.Unix(w, 0))
		require.Equal(t, a.count, g[0].count, "window %v: count", time.Unix(w, 0))
	}
	for w := range got {
		_, ok := want[w]
		require.True(t, ok, "window %v emitted without values", time.Unix(w, 0))
	}
	t.Logf("%d windows, each emitted once with its exact sum and count", len(want))
}
