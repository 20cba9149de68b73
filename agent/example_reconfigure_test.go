package agent_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink/console"
	"github.com/meterkit/meter/transport"
)

// Reconfigure applies a new set of drivers (and stages): here before Run,
// as a program that read its configuration file again would at any time.
// The driver "orders" is given again as the same value and keeps running;
// "refunds" is not given, so it is stopped (and closed if it is an
// io.Closer); "invoices" is new.
func ExampleAgent_Reconfigure() {
	send, recv := transport.Pipe()
	con, _ := console.New(os.Stdout)
	pub, _ := publisher.New(recv, publisher.WithSink("console", con))
	orders := queueDepth{func() int { return 42 }}
	a, _ := agent.New(send, agent.WithHost("web1"), agent.WithJitter(0),
		agent.WithDriver("orders", orders, agent.Interval(time.Hour)),
		agent.WithDriver("refunds", queueDepth{func() int { return 3 }}, agent.Interval(time.Hour)))

	err := a.Reconfigure(context.Background(),
		agent.WithDriver("orders", orders, agent.Interval(time.Hour)),
		agent.WithDriver("invoices", queueDepth{func() int { return 7 }}, agent.Interval(time.Hour)))
	fmt.Println("reconfigured:", err == nil)

	pubCtx, stopPub := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = pub.Run(pubCtx); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_ = a.Run(ctx)
	stopPub()
	<-done
	_ = a.Close(context.Background())
	_ = pub.Close(context.Background())
	fmt.Println("acknowledged:", a.Stats().AckedMeasurements)
	// Unordered output:
	// reconfigured: true
	// 2026-11-21T10:00:00Z web1 queue.depth[orders] 42 {item} gauge
	// 2026-11-21T10:00:00Z web1 queue.depth[orders] 7 {item} gauge
	// acknowledged: 2
}
