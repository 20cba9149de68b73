package stage_test

import (
	"context"
	"testing"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/levels"
	"github.com/meterkit/meter/stage/rate"
	"github.com/meterkit/meter/stage/selectstage"
	"github.com/meterkit/meter/stage/stagetest"
	"github.com/meterkit/meter/stage/unit"
)

// rateChain is rate + levels as an agent would run them on a host's
// collections: a rate of every cumulative (cpu.time per CPU and mode, the
// disks' bytes and io time), and levels on every measurement, the rates
// included.
func rateChain(tb testing.TB) stage.Stage {
	r, err := rate.New(rate.Config{Meters: stage.MustCompileMeters("cpu.time", "disk.*"), As: "$(name).rate"})
	if err != nil {
		tb.Fatal(err)
	}
	warn, crit := 80.0, 95.0
	lv, err := levels.New(levels.Config{Meters: stage.MustCompileMeters("*"), Warning: &warn, Critical: &crit, Hysteresis: 5})
	if err != nil {
		tb.Fatal(err)
	}
	return stage.Chain(stage.Named("rate", r), stage.Named("levels", lv))
}

// advance moves a collection on by a minute: every cumulative grows by
// its slope, so that each one makes a rate.
func advance(batch []meter.Measurement) {
	for i := range batch {
		batch[i].Time = batch[i].Time.Add(time.Minute)
		if batch[i].Kind == meter.Cumulative {
			batch[i].Value += 60 * float64(i%7+1)
		}
	}
}

// selectUnit is select + unit of hostChain, without levels: the stateless
// baseline of BenchmarkRateLevels.
func selectUnit(tb testing.TB) stage.Stage {
	sel, err := selectstage.New(selectstage.Config{Meters: stage.MustCompileMeters("cpu.*", "memory.*", "disk.*")})
	if err != nil {
		tb.Fatal(err)
	}
	u, err := unit.New(unit.Config{Meters: stage.MustCompileMeters("memory.*", "disk.*"), From: "B", To: "MiB"})
	if err != nil {
		tb.Fatal(err)
	}
	return stage.Chain(sel, u)
}

// BenchmarkRateLevels runs rate + levels on a batch of 1,000 host
// measurements (932 of them cumulative, each making a rate), once warm, and
// in the same loop, on the same batch, two baselines: a plain copy of the
// batch into out, and select + unit (stateless stages). ns/measurement is
// rate + levels per input measurement (the target: under 150 ns and 0
// allocations); copy-ns/measurement and select+unit-ns/measurement are the
// baselines; x-select+unit is the ratio of the first to the second. The
// batch is moved on a minute between runs, outside the timers.
func BenchmarkRateLevels(b *testing.B) {
	batches := stagetest.HostBatches(3, 64, 140)
	if len(batches[0]) != 1000 {
		b.Fatalf("batch of %d", len(batches[0]))
	}
	c, su := rateChain(b), selectUnit(b)
	out := make([]meter.Measurement, 0, 3*len(batches[0]))
	ctx := context.Background()
	for _, batch := range batches {
		var err error
		if out, err = c.Process(ctx, batch, out[:0]); err != nil {
			b.Fatal(err)
		}
		if out, err = su.Process(ctx, batch, out[:0]); err != nil {
			b.Fatal(err)
		}
	}
	in := batches[2]
	for range 3 { // the rates settle at their levels: changes of level allocate, and are rare
		advance(in)
		out, _ = c.Process(ctx, in, out[:0])
	}
	b.ReportAllocs()
	var work, copied, stateless time.Duration
	outs := 0
	for b.Loop() {
		b.StopTimer()
		advance(in)
		b.StartTimer()
		start := time.Now()
		out = append(out[:0], in...)
		copied += time.Since(start)
		start = time.Now()
		out, _ = su.Process(ctx, in, out[:0])
		stateless += time.Since(start)
		start = time.Now()
		out, _ = c.Process(ctx, in, out[:0])
		work += time.Since(start)
		outs = len(out)
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) / float64(len(in)) }
	b.ReportMetric(per(work), "ns/measurement")
	b.ReportMetric(per(copied), "copy-ns/measurement")
	b.ReportMetric(per(stateless), "select+unit-ns/measurement")
	b.ReportMetric(float64(work)/float64(stateless), "x-select+unit")
	b.ReportMetric(float64(outs), "out/batch")
}

func TestRateLevelsNoAllocationsOnceWarm(t *testing.T) {
	batches := stagetest.HostBatches(3, 64, 140)
	c := rateChain(t)
	out := make([]meter.Measurement, 0, 3*len(batches[0]))
	for _, batch := range batches {
		out, _ = c.Process(context.Background(), batch, out[:0])
	}
	in := batches[2]
	for range 3 { // the rates settle at their levels: changes of level allocate, and are rare
		advance(in)
		out, _ = c.Process(context.Background(), in, out[:0])
	}
	allocs := testing.AllocsPerRun(10, func() {
		advance(in)
		out, _ = c.Process(context.Background(), in, out[:0])
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch once warm", allocs)
	}
	cumulative := 0
	for _, m := range in {
		if m.Kind == meter.Cumulative {
			cumulative++
		}
	}
	if want := len(in) + cumulative; len(out) < want {
		t.Fatalf("%d measurements out, want at least %d: the 1000 in and a rate of each of the %d cumulatives", len(out), want, cumulative)
	}
}
