package publisher_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

// The stage chains of BenchmarkAgentToPublisherTCP on their own
// (benchAgentStages, benchPublisherStages), in place, as the agent and the
// publisher run them on the buffer they own.

func openBenchChain(tb testing.TB, js string) stage.InPlacer {
	c, err := stage.OpenChain(benchSpecs(tb, js))
	if err != nil {
		tb.Fatal(err)
	}
	return c.(stage.InPlacer)
}

// agentHostBatch is hostBatch as the agent's stages get it: with the
// agent's host.
func agentHostBatch() []meter.Measurement {
	ms := hostBatch()
	for i := range ms {
		ms[i].Host = "bench-host"
	}
	return ms
}

// decoded returns a copy of ms whose strings are all fresh, as a
// publisher's decoder makes them: no string shares its bytes with ms's.
func decoded(ms []meter.Measurement) []meter.Measurement {
	out := make([]meter.Measurement, len(ms))
	for i, m := range ms {
		m.Name, m.Unit, m.Host = strings.Clone(m.Name), strings.Clone(m.Unit), strings.Clone(m.Host)
		m.ResourceID, m.ProjectID, m.UserID = strings.Clone(m.ResourceID), strings.Clone(m.ProjectID), strings.Clone(m.UserID)
		if m.Labels != nil {
			ls := make([]meter.Label, len(m.Labels))
			for j, l := range m.Labels {
				ls[j] = meter.Label{Key: strings.Clone(l.Key), Value: strings.Clone(l.Value)}
			}
			m.Labels = ls
		}
		out[i] = m
	}
	return out
}

// benchInPlace stages a copy of batches[k] in place per op, k rotating, as
// the agent and the publisher stage the buffer they own.
func benchInPlace(b *testing.B, c stage.InPlacer, batches [][]meter.Measurement) {
	ctx := context.Background()
	buf := make([]meter.Measurement, 0, 2*len(batches[0]))
	for range 3 {
		for _, batch := range batches {
			if _, err := c.ProcessInPlace(ctx, append(buf[:0], batch...)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		out, _ := c.ProcessInPlace(ctx, append(buf[:0], batches[k]...))
		if len(out) != len(batches[k]) {
			b.Fatalf("%d measurements out of %d", len(out), len(batches[k]))
		}
		if k++; k == len(batches) {
			k = 0
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(batches[0])), "ns/measurement")
}

// BenchmarkAgentChain runs the agent's chain of the agent-to-publisher
// benchmark in place on its batch, whose names and units are a driver's
// constants (the same strings batch after batch). The copy into the buffer
// is part of each op, as the agent's copy into its staging buffer.
func BenchmarkAgentChain(b *testing.B) {
	benchInPlace(b, openBenchChain(b, benchAgentStages), [][]meter.Measurement{agentHostBatch()})
}

// BenchmarkPublisherChain runs the publisher's chain of the
// agent-to-publisher benchmark in place on what the agent's chain made of
// its batches, decoded: fresh strings in each batch (8 batches rotated).
// aligned: the agent's batches as they are (the same names at the same
// positions batch after batch), as frames of envelope version 2 carry
// them. cut=873: the stream of them cut every 873 measurements, as 64 KiB
// frames of version 1 cut it (meterkit.state as a label: to a publisher of
// an earlier release, or from a spool), so that a name is rarely where it
// was in the last batch.
func BenchmarkPublisherChain(b *testing.B) {
	agent := openBenchChain(b, benchAgentStages)
	staged, err := agent.ProcessInPlace(context.Background(), agentHostBatch())
	if err != nil {
		b.Fatal(err)
	}
	for _, cut := range []int{0, 873} {
		batches := make([][]meter.Measurement, 8)
		for i := range batches {
			if cut == 0 {
				batches[i] = decoded(staged)
				continue
			}
			from := i * cut % len(staged)
			stream := append(append([]meter.Measurement(nil), staged[from:]...), staged...)
			batches[i] = decoded(stream[:cut])
		}
		name := "aligned"
		if cut > 0 {
			name = "cut=" + strconv.Itoa(cut)
		}
		b.Run(name, func(b *testing.B) { benchInPlace(b, openBenchChain(b, benchPublisherStages), batches) })
	}
}

func TestBenchChainsNoAllocationsOnceWarm(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		chain string
		fresh bool
	}{{"agent", benchAgentStages, false}, {"publisher", benchPublisherStages, true}} {
		s := openBenchChain(t, c.chain)
		batches := [][]meter.Measurement{agentHostBatch()}
		if c.fresh {
			batches = [][]meter.Measurement{decoded(batches[0]), decoded(batches[0])}
		}
		buf := make([]meter.Measurement, 0, 2000)
		for _, batch := range batches {
			_, _ = s.ProcessInPlace(ctx, append(buf[:0], batch...))
		}
		k := 0
		allocs := testing.AllocsPerRun(10, func() {
			_, _ = s.ProcessInPlace(ctx, append(buf[:0], batches[k%len(batches)]...))
			k++
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per batch once warm", c.name, allocs)
		}
	}
}
