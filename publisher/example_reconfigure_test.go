package publisher_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

// A running publisher gets another set of sinks: "store" is given again as
// the same value and keeps running, "audit" is removed (closed), "archive"
// is added and takes the batches from then on.
func ExamplePublisher_Reconfigure() {
	send, recv := transport.Pipe()
	var store, audit, archive sink.Recorder
	p, _ := publisher.New(recv, publisher.WithSink("store", &store), publisher.WithSink("audit", &audit))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	batch := func(seq uint64) {
		at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		_ = send.Send(context.Background(), &transport.Envelope{Agent: "a1", Seq: seq,
			Measurements: []meter.Measurement{{Name: "load.1", Kind: meter.Gauge, Value: 1, Time: at, Host: "h"}}})
	}

	batch(1)
	err := p.Reconfigure(context.Background(), publisher.WithSink("store", &store), publisher.WithSink("archive", &archive))
	fmt.Println("reconfigured:", err == nil, "audit closed:", audit.Closed())
	batch(2)

	cancel()
	<-done
	_ = p.Close(context.Background())
	fmt.Println("store:", store.Len(), "audit:", audit.Len(), "archive:", archive.Len())
	// Output:
	// reconfigured: true audit closed: true
	// store: 2 audit: 1 archive: 1
}
