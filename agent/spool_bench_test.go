package agent_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/transport"
)

// BenchmarkSpool measures what the durable spool costs: measurements a
// second through an agent into transport.Pipe, whose receiver acknowledges
// at once, with batches of 100 kept in memory or in the spool under each
// sync policy. One op is one measurement added; the agent is drained and
// every measurement acknowledged before the clock stops.
//
//	go test -run '^$' -bench Spool -benchmem ./agent
func BenchmarkSpool(b *testing.B) {
	for _, c := range []struct {
		name string
		opts func(dir string) []agent.Option
	}{
		{"memory", func(string) []agent.Option { return nil }},
		{"spool-sync-always", func(dir string) []agent.Option {
			return []agent.Option{agent.WithSpool(dir, agent.SpoolSync(agent.SyncAlways))}
		}},
		{"spool-sync-every-100ms", func(dir string) []agent.Option {
			return []agent.Option{agent.WithSpool(dir, agent.SpoolSync(agent.SyncEvery(100*time.Millisecond)))}
		}},
		{"spool-sync-never", func(dir string) []agent.Option {
			return []agent.Option{agent.WithSpool(dir, agent.SpoolSync(agent.SyncNever))}
		}},
	} {
		b.Run(c.name, func(b *testing.B) { benchAgent(b, c.opts(b.TempDir())) })
	}
}

const benchBatch = 100

func benchAgent(b *testing.B, extra []agent.Option) {
	s, r := transport.Pipe()
	defer s.Close()
	recvCtx, stopRecv := context.WithCancel(context.Background())
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			d, err := r.Receive(recvCtx)
			if err != nil {
				return
			}
			_ = d.Ack(transport.Ack{Status: transport.StatusOK})
		}
	}()
	defer func() { stopRecv(); <-recvDone }()

	opts := append([]agent.Option{agent.WithLogger(quiet), agent.WithID("bench"), agent.WithHost("bench-host"),
		agent.WithBatch(benchBatch, time.Hour), agent.WithDrainTimeout(time.Minute)}, extra...)
	a, err := agent.New(s, opts...)
	if err != nil {
		b.Fatal(err)
	}
	// Measurements shaped like the synthetic driver's: one label, one
	// resource id per slot.
	labels := []meter.Label{{Key: "run", Value: "bench"}}
	now := time.Now()
	ms := make([]meter.Measurement, benchBatch)
	for i := range ms {
		ms[i] = meter.Measurement{Name: "synthetic.seq", Kind: meter.Gauge, Value: float64(i + 1), Time: now,
			Host: "bench-host", ResourceID: "slot-" + strconv.Itoa(i), Labels: labels}
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()

	b.ReportAllocs()
	b.ResetTimer()
	// Not b.Loop: the clock must run on through the drain below.
	n := 0
	for range b.N {
		if err := a.Add(ms[n%benchBatch]); err != nil {
			b.Fatal(err)
		}
		n++
		// The memory queue drops its oldest batches when full: keep the
		// producer at most a few batches ahead of the sender.
		if n%benchBatch == 0 {
			for a.Stats().Queued > 8 {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st := a.Stats()
	if st.AckedMeasurements != uint64(n) || st.Dropped != 0 {
		b.Fatalf("added %d, acknowledged %d, dropped %d batches", n, st.AckedMeasurements, st.Dropped)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "measurements/s")
}
