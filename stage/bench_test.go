package stage_test

import (
	"context"
	"testing"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/levels"
	"github.com/meterkit/meter/stage/selectstage"
	"github.com/meterkit/meter/stage/stagetest"
	"github.com/meterkit/meter/stage/unit"
)

// hostChain is select + unit + levels as an agent would run them on a
// host's collections, every stage acting on every measurement (the worst
// case: select keeps them all, levels checks them all).
func hostChain(tb testing.TB) stage.Stage {
	sel, err := selectstage.New(selectstage.Config{Meters: stage.MustCompileMeters("cpu.*", "memory.*", "disk.*")})
	if err != nil {
		tb.Fatal(err)
	}
	u, err := unit.New(unit.Config{Meters: stage.MustCompileMeters("memory.*", "disk.*"), From: "B", To: "MiB"})
	if err != nil {
		tb.Fatal(err)
	}
	warn, crit := 80.0, 95.0
	lv, err := levels.New(levels.Config{Meters: stage.MustCompileMeters("*"), Warning: &warn, Critical: &crit, Hysteresis: 5})
	if err != nil {
		tb.Fatal(err)
	}
	return stage.Chain(sel, u, stage.Named("levels", lv))
}

// BenchmarkHostChain runs select + unit + levels on a batch of 1,000
// host-like measurements (64 CPUs: cpu.util and cpu.time per mode; memory;
// 140 disks), once warm. ns/measurement is the figure of the target (under
// 150 ns, 0 allocations).
func BenchmarkHostChain(b *testing.B) {
	batches := stagetest.HostBatches(3, 64, 140)
	if len(batches[0]) != 1000 {
		b.Fatalf("batch of %d", len(batches[0]))
	}
	c := hostChain(b)
	out := make([]meter.Measurement, 0, 2*len(batches[0]))
	ctx := context.Background()
	for _, batch := range batches {
		var err error
		if out, err = c.Process(ctx, batch, out[:0]); err != nil {
			b.Fatal(err)
		}
	}
	in := batches[2]
	b.ReportAllocs()
	for b.Loop() {
		out, _ = c.Process(ctx, in, out[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(in)), "ns/measurement")
}

func TestHostChainNoAllocationsOnceWarm(t *testing.T) {
	batches := stagetest.HostBatches(3, 64, 140)
	c := hostChain(t)
	out := make([]meter.Measurement, 0, 2*len(batches[0]))
	for _, batch := range batches {
		out, _ = c.Process(context.Background(), batch, out[:0])
	}
	allocs := testing.AllocsPerRun(10, func() { out, _ = c.Process(context.Background(), batches[2], out[:0]) })
	if allocs != 0 {
		t.Fatalf("%v allocations per batch once warm", allocs)
	}
	if len(out) != 1000 {
		t.Fatalf("%d measurements out, want the 1000 in (no level changes in a steady batch)", len(out))
	}
}
