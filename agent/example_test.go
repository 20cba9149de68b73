package agent_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink/console"
	"github.com/meterkit/meter/transport"
)

// queueDepth is a custom driver: one method, returning what it measured.
type queueDepth struct{ depth func() int }

func (d queueDepth) Collect(context.Context) ([]meter.Measurement, error) {
	return []meter.Measurement{{
		Name: "queue.depth", Kind: meter.Gauge, Unit: "{item}", Value: float64(d.depth()),
		ResourceID: "orders",
		Time:       time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), // normally left empty: the agent fills it
	}}, nil
}

// An agent runs a custom driver and delivers to a publisher that prints to
// the console. transport.Pipe joins them in one process; across machines use
// transport/nanomsg.
func Example_customDriver() {
	send, recv := transport.Pipe()
	con, _ := console.New(os.Stdout)
	pub, _ := publisher.New(recv, publisher.WithSink("console", con))
	a, _ := agent.New(send,
		agent.WithHost("web1"),
		agent.WithJitter(0), // collect at once: this example runs for half a second
		agent.WithDriver("queue", queueDepth{func() int { return 42 }}, agent.Interval(time.Hour)),
	)

	pubCtx, stopPub := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = pub.Run(pubCtx); close(done) }()

	// Run the agent long enough for one collection, then let it drain.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_ = a.Run(ctx)
	stopPub()
	<-done
	_ = a.Close(context.Background()) // closes send, and so both ends of the pipe
	_ = pub.Close(context.Background())
	fmt.Println("acknowledged:", a.Stats().AckedMeasurements)
	// Output:
	// 2026-11-21T10:00:00Z web1 queue.depth[orders] 42 {item} gauge
	// acknowledged: 1
}

// A service can push its own measurements with Add as well as being polled.
func ExampleAgent_Add() {
	send, recv := transport.Pipe()
	con, _ := console.New(os.Stdout, console.WithFormat(console.JSON))
	pub, _ := publisher.New(recv, publisher.WithSink("console", con))
	a, _ := agent.New(send, agent.WithHost("api1"))
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	_ = a.Add(meter.Measurement{Name: "http.requests", Kind: meter.Cumulative, Value: 1234, Time: at,
		Labels: []meter.Label{{Key: "route", Value: "/orders"}}})

	pubCtx, stopPub := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = pub.Run(pubCtx); close(done) }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing more to collect: Run just drains what was added
	_ = a.Run(ctx)
	stopPub()
	<-done
	_ = a.Close(context.Background()) // closes send, and so both ends of the pipe
	_ = pub.Close(context.Background())
	// Output:
	// {"name":"http.requests","kind":"cumulative","value":1234,"time":"2026-11-21T10:00:00Z","host":"api1","labels":{"route":"/orders"}}
}

var _ driver.Driver = queueDepth{}
