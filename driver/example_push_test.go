package driver_test

import (
	"context"
	"fmt"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

// webhook is a push source: what arrives on in is delivered at once, and
// its sender is answered only once the agent says it is durable.
type webhook struct {
	in chan request
}

type request struct {
	value float64
	reply chan error // the sender's answer: nil means stored
}

// Collect returns nothing: the agent runs Push instead.
func (w *webhook) Collect(context.Context) ([]meter.Measurement, error) { return nil, nil }

func (w *webhook) Push(ctx context.Context, deliver driver.Deliver) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-w.in:
			deliver(driver.Delivery{
				Measurements: []meter.Measurement{{Name: "orders", Kind: meter.Gauge, Unit: "order", Value: r.value}},
				Ack:          func(err error) { r.reply <- err }, // must not block: reply is buffered
			})
		}
	}
}

func Example_pusher() {
	w := &webhook{in: make(chan request)}
	var d driver.Driver = w
	p, ok := d.(driver.Pusher) // what the agent checks
	fmt.Println("push source:", ok)

	// Play the agent: take each delivery, and say it is durable.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- p.Push(ctx, func(d driver.Delivery) {
			fmt.Println("delivered", d.Measurements[0].Name, d.Measurements[0].Value)
			d.Ack(nil)
		})
	}()
	r := request{value: 42, reply: make(chan error, 1)}
	w.in <- r
	fmt.Println("sender answered:", <-r.reply)
	cancel()
	fmt.Println("Push returned:", <-done)
	// Output:
	// push source: true
	// delivered orders 42
	// sender answered: <nil>
	// Push returned: <nil>
}
