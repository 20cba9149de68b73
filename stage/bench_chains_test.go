package stage_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

// The stage chains of the agent-to-publisher benchmark (publisher's
// bench_test.go): select + unit + levels in the agent, select + unit in the
// publisher.
const benchAgentChain, benchPublisherChain = `[
	{"type": "select", "meters": ["cpu.*", "memory.*", "disk.*", "network.*", "filesystem.*", "load.*", "!other.*"]},
	{"type": "unit", "meters": ["memory.*", "disk.*", "network.*", "filesystem.*"], "from": "B", "to": "MiB"},
	{"type": "levels", "meters": ["*"], "warning": 1e6, "critical": 2e6, "hysteresis": 5}
]`, `[
	{"type": "select", "meters": ["*", "!other.*"]},
	{"type": "unit", "meters": ["memory.*", "disk.*", "network.*", "filesystem.*"], "from": "MiB", "to": "GiB"}
]`

func openBenchChain(tb testing.TB, js string) stage.InPlacer {
	var specs []stage.Spec
	if err := json.Unmarshal([]byte(js), &specs); err != nil {
		tb.Fatal(err)
	}
	c, err := stage.OpenChain(specs)
	if err != nil {
		tb.Fatal(err)
	}
	return c.(stage.InPlacer)
}

// agentHostBatch is the batch of the agent-to-publisher benchmark as the
// agent stages it: 1,000 measurements of 10 meters (a driver's constant
// strings), 32 resources, every third with a label, the agent's host.
func agentHostBatch() []meter.Measurement {
	names := []struct{ name, unit string }{
		{"cpu.util", "%"}, {"cpu.time", "s"}, {"memory.used", "B"}, {"disk.read.bytes", "B"},
		{"disk.write.bytes", "B"}, {"network.rx.bytes", "B"}, {"network.tx.bytes", "B"},
		{"filesystem.used", "B"}, {"load.1", ""}, {"network.rx.packets", "{packet}"},
	}
	at := time.Unix(1_700_000_000, 0)
	ms := make([]meter.Measurement, 1000)
	for i := range ms {
		n := names[i%len(names)]
		ms[i] = meter.Measurement{Name: n.name, Kind: meter.Gauge, Unit: n.unit, Value: float64(i) * 1.5,
			Time: at, Host: "bench-host", ResourceID: "dev" + strconv.Itoa(i%32)}
		if i%3 == 0 {
			ms[i].Labels = []meter.Label{{Key: "mode", Value: "user"}}
		}
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
// is part of each op.
func BenchmarkAgentChain(b *testing.B) {
	benchInPlace(b, openBenchChain(b, benchAgentChain), [][]meter.Measurement{agentHostBatch()})
}

// BenchmarkPublisherChain runs the publisher's chain of the
// agent-to-publisher benchmark in place on what the agent's chain made of
// its batches, decoded: fresh strings in each batch (8 batches rotated).
// aligned: the agent's batches as they are (the same names at the same
// positions batch after batch). cut=873: the stream of them cut every 873
// measurements, as the agent's frames cut them in that benchmark (about
// 870 a frame), so that a name is rarely where it was in the last batch.
func BenchmarkPublisherChain(b *testing.B) {
	agent := openBenchChain(b, benchAgentChain)
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
		b.Run(name, func(b *testing.B) { benchInPlace(b, openBenchChain(b, benchPublisherChain), batches) })
	}
}

func TestBenchChainsNoAllocationsOnceWarm(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		chain string
		fresh bool
	}{{"agent", benchAgentChain, false}, {"publisher", benchPublisherChain, true}} {
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
