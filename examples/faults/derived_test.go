package faults

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/sink/riemann/riemanntest"
)

// perSlot is the agent's numbered run's output of one slot at the store:
// the times of its numbers, rates and deltas.
type perSlot struct {
	seq           map[time.Time]bool
	rates, deltas map[time.Time][]float64
}

// derived counts the store's rates and deltas of run.
func derived(events []riemanntest.Event, run string) int {
	n := 0
	for _, e := range events {
		if (e.Service == "synthetic.rate" || e.Service == "synthetic.delta") && e.Attributes["run"] == run {
			n++
		}
	}
	return n
}

// derivedOnce checks the agent stages' rates and deltas of run at the
// store (see agentStages): for each slot, every collection but the first
// has exactly one rate (positive) and one delta (two collections' numbers
// apart: 2 x 200), at the time of its numbers, and there are no others. A
// collection's numbers and the rates and deltas made of them go into the
// spool in one transaction, with the stages' state, so that a crash
// leaves all of them or none, and a restart neither repeats nor skips an
// interval.
func derivedOnce(t *testing.T, events []riemanntest.Event, run string) {
	t.Helper()
	slots := map[string]*perSlot{}
	get := func(id string) *perSlot {
		s := slots[id]
		if s == nil {
			s = &perSlot{seq: map[time.Time]bool{}, rates: map[time.Time][]float64{}, deltas: map[time.Time][]float64{}}
			slots[id] = s
		}
		return s
	}
	for _, e := range events {
		if e.Attributes["run"] != run {
			continue
		}
		switch e.Service {
		case "synthetic.seq":
			get(e.Attributes["resource_id"]).seq[e.Time] = true
		case "synthetic.rate":
			s := get(e.Attributes["resource_id"])
			s.rates[e.Time] = append(s.rates[e.Time], e.Metric)
		case "synthetic.delta":
			s := get(e.Attributes["resource_id"])
			s.deltas[e.Time] = append(s.deltas[e.Time], e.Metric)
		}
	}
	require.NotEmpty(t, slots, "run %s", run)
	const step = 2 * 200 // the staged numbers (doubled) of a slot, one collection apart
	total := 0
	var bad []string
	badAt := map[time.Time]int{} // points with a wrong count of rates or deltas, by time
	for id, s := range slots {
		var first time.Time
		for at := range s.seq {
			if first.IsZero() || at.Before(first) {
				first = at
			}
		}
		for at := range s.seq {
			r, d := s.rates[at], s.deltas[at]
			want := 1
			if at.Equal(first) {
				want = 0
			}
			if len(r) != want || len(d) != want {
				badAt[at]++
				bad = append(bad, fmt.Sprintf("%s at %v: rates %v, deltas %v, want %d each", id, at, r, d, want))
				continue
			}
			if want == 1 && (r[0] <= 0 || d[0] != step) {
				bad = append(bad, fmt.Sprintf("%s at %v: rate %v, delta %v (want > 0 and %d)", id, at, r[0], d[0], step))
			}
		}
		for at, r := range s.rates {
			if !s.seq[at] {
				bad = append(bad, fmt.Sprintf("%s at %v: rates %v without numbers", id, at, r))
			}
		}
		for at, d := range s.deltas {
			if !s.seq[at] {
				bad = append(bad, fmt.Sprintf("%s at %v: deltas %v without numbers", id, at, d))
			}
		}
		total += len(s.deltas)
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		t.Fatalf("run %s: %d wrong rates or deltas (points with a wrong count, by time: %v); first: %s",
			run, len(bad), badAt, strings.Join(bad[:min(len(bad), 10)], "; "))
	}
	t.Logf("run %s: %d slots, %d rates and %d deltas, each once", run, len(slots), total, total)
}
