package agent

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/spool"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/rate"
	"github.com/meterkit/meter/transport"
)

// BenchmarkSpoolAppendState measures what committing the stages' state
// costs at a flush: one op appends a batch of 100 measurements without
// state and one with the checkpoint of a rate stage holding the batch's 100
// series (or 10 of them), to the same spool, interleaved so that both see the same machine
// and the same file; the batches are then delivered (deleted), untimed, as
// the agent does once they are acknowledged. It reports each one's ns per append and their ratio
// (with/without; the target is at most 1.10).
//
//	go test -run '^$' -bench SpoolAppendState -benchtime 3000x ./agent
func BenchmarkSpoolAppendState(b *testing.B) {
	for _, sync := range []struct {
		name string
		p    spool.SyncPolicy
	}{{"sync-never", spool.SyncNever}, {"sync-always", spool.SyncAlways}} {
		// Every measurement a rated series (the worst case), or one in ten
		// (a host's cumulatives among its gauges).
		for _, rated := range []int{100, 10} {
			b.Run(sync.name+"/rated-"+strconv.Itoa(rated), func(b *testing.B) { benchAppendState(b, sync.p, rated) })
		}
	}
}

func benchAppendState(b *testing.B, sync spool.SyncPolicy, rated int) {
	cfg, err := spool.NewConfig(spool.Sync(sync), spool.MaxBytes(32<<20))
	if err != nil {
		b.Fatal(err)
	}
	ds, err := openSpool(b.TempDir(), cfg, func(*transport.Envelope) {}, true)
	if err != nil {
		b.Fatal(err)
	}
	defer ds.sp.Close()

	const n = 100
	labels := []meter.Label{{Key: "run", Value: "bench"}}
	t0 := time.Now().Truncate(time.Second)
	ms := make([]meter.Measurement, n)
	for i := range ms {
		ms[i] = meter.Measurement{Name: "c", Kind: meter.Cumulative, Unit: "B", Value: float64(i), Time: t0,
			Host: "bench-host", ResourceID: "slot-" + strconv.Itoa(i), Labels: labels}
	}
	r, err := rate.New(rate.Config{Meters: stage.MustCompileMeters("c"), As: "c.rate"})
	if err != nil {
		b.Fatal(err)
	}
	st := newStageState([]stage.Stage{stage.Named("rate", r)})
	if _, err := st.cp.(stage.Stage).Process(context.Background(), ms[:rated], nil); err != nil {
		b.Fatal(err)
	}
	state, err := st.cp.Checkpoint()
	if err != nil {
		b.Fatal(err)
	}
	st.disk = ds
	deliver := func() {
		for range 2 {
			e, ok := ds.lane.Next(context.Background())
			if !ok {
				b.Fatal("no batch")
			}
			if err := ds.lane.Done(e.ID); err != nil {
				b.Fatal(err)
			}
		}
	}

	env := &transport.Envelope{Version: transport.Version, Agent: "bench", Host: "bench-host", SentAt: t0, Measurements: ms}
	var without, with time.Duration
	b.ReportAllocs()
	env.Seq = 0
	for i := 0; b.Loop(); i++ {
		// Alternate which goes first, so that neither pays for the other.
		for k := range 2 {
			env.Seq++
			start := time.Now()
			if (i+k)%2 == 0 {
				ds.state = nil
				if _, _, err := ds.push(env, 0, nil, false); err != nil {
					b.Fatal(err)
				}
				without += time.Since(start)
				continue
			}
			ds.state, st.pending, st.dirty = st, state, true
			if _, _, err := ds.push(env, 0, nil, false); err != nil {
				b.Fatal(err)
			}
			with += time.Since(start)
			if st.dirty {
				b.Fatal("the state was not committed")
			}
		}
		b.StopTimer()
		deliver()
		b.StartTimer()
	}
	b.ReportMetric(float64(without.Nanoseconds())/float64(b.N), "ns/append-without")
	b.ReportMetric(float64(with.Nanoseconds())/float64(b.N), "ns/append-with-state")
	b.ReportMetric(float64(with)/float64(without), "with/without")
	b.ReportMetric(float64(len(state)), "state-bytes")
}
