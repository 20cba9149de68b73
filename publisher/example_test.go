package publisher_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/transport"
)

// maxSink is a custom sink: it keeps the largest value seen per series.
// The publisher never calls Write concurrently, so it needs no lock.
type maxSink struct{ max map[string]float64 }

func (s *maxSink) Write(_ context.Context, batch []meter.Measurement) error {
	for _, m := range batch {
		if v, ok := s.max[m.Name]; !ok || m.Value > v {
			s.max[m.Name] = m.Value
		}
	}
	return nil
}

func (s *maxSink) Close(context.Context) error { return nil }

// A custom publisher: a transport receiver and a custom sink, composed.
func Example_customPublisher() {
	send, recv := transport.Pipe()
	ms := &maxSink{max: map[string]float64{}}
	p, _ := publisher.New(recv, publisher.WithSink("max", ms))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()

	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i, v := range []float64{3, 9, 4} {
		err := send.Send(context.Background(), &transport.Envelope{Agent: "a1", Seq: uint64(i + 1),
			Measurements: []meter.Measurement{{Name: "load.1", Kind: meter.Gauge, Value: v, Time: at, Host: "h"}}})
		fmt.Println("batch", i+1, "acknowledged:", err == nil)
	}
	cancel()
	<-done
	_ = p.Close(context.Background())
	fmt.Println("max load.1:", ms.max["load.1"])
	fmt.Println("written:", p.Stats().Written)
	// Output:
	// batch 1 acknowledged: true
	// batch 2 acknowledged: true
	// batch 3 acknowledged: true
	// max load.1: 9
	// written: 3
}
