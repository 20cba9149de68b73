package publisher_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

// BenchmarkPublisherSpool measures what the publisher's spool costs: four
// agents' worth of batches of 100 measurements, sent through transport.Pipe
// and acknowledged by a publisher writing to a discard sink, without a
// spool (acknowledged once written), and with one, forced to disk before
// each acknowledgement or not. One op is one measurement acknowledged; with
// a spool the lanes have delivered everything before the clock stops.
//
//	go test -run '^$' -bench PublisherSpool -benchmem ./publisher
func BenchmarkPublisherSpool(b *testing.B) {
	for _, c := range []struct {
		name string
		opts func(dir string) []publisher.Option
	}{
		{"no-spool", func(string) []publisher.Option { return nil }},
		{"spool-sync", func(dir string) []publisher.Option { return []publisher.Option{publisher.WithSpool(dir)} }},
		{"spool-nosync", func(dir string) []publisher.Option {
			return []publisher.Option{publisher.WithSpool(dir, publisher.SpoolNoSync())}
		}},
	} {
		b.Run(c.name, func(b *testing.B) { benchPublisher(b, c.opts(b.TempDir())) })
	}
}

func benchPublisher(b *testing.B, extra []publisher.Option) {
	const senders, size = 4, 100
	s, r := transport.Pipe()
	p, err := publisher.New(r, append([]publisher.Option{publisher.WithLogger(quiet),
		publisher.WithSink("discard", sink.Discard), publisher.WithWorkers(senders)}, extra...)...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	batch := hostBatch()[:size]
	batches := (b.N + size - 1) / size
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range senders {
		wg.Go(func() {
			for seq := w; seq < batches; seq += senders {
				env := &transport.Envelope{Version: transport.Version, Agent: "bench-" + strconv.Itoa(w),
					Seq: uint64(seq + 1), SentAt: time.Now(), Host: "h", Measurements: batch}
				if err := s.Send(context.Background(), env); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for p.Stats().Pending > 0 {
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(batches*size)/b.Elapsed().Seconds(), "measurements/s")
	cancel()
	<-done
	_ = s.Close()
	_ = p.Close(context.Background())
	if st := p.Stats(); st.Acked != uint64(batches) {
		b.Fatalf("acked %d of %d batches: %+v", st.Acked, batches, st)
	}
}
