package publisher_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport/nanomsg"
)

// A program tells its supervisor it is ready (systemd's READY=1) once Run
// receives, by waiting on Ready rather than polling Serving.
func ExamplePublisher_Ready() {
	quiet := slog.New(slog.DiscardHandler)
	r, err := nanomsg.Listen("tcp://127.0.0.1:0", nanomsg.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := publisher.New(r, publisher.WithSink("discard", sink.Discard), publisher.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	select {
	case <-p.Ready():
		fmt.Println("ready; serving:", p.Serving()) // here: notify the supervisor
	case err := <-done:
		fmt.Println("could not start:", err)
		return
	}
	cancel()
	fmt.Println("Run:", <-done)
	fmt.Println("serving after Run:", p.Serving())
	_ = p.Close(context.Background())
	// Output:
	// ready; serving: true
	// Run: <nil>
	// serving after Run: false
}
