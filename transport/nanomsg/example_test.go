package nanomsg_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
)

func Example() {
	// The publisher side.
	r, err := nanomsg.Listen("inproc://example")
	if err != nil {
		panic(err)
	}
	defer r.Close()
	go func() {
		for {
			d, err := r.Receive(context.Background())
			if err != nil {
				return // closed
			}
			for _, m := range d.Envelope.Measurements {
				fmt.Printf("got %s=%g%s from %s seq %d\n", m.Name, m.Value, m.Unit, d.Envelope.Agent, d.Envelope.Seq)
			}
			if d.Envelope.Seq == 2 {
				_ = d.Ack(transport.Ack{Status: transport.StatusRetry, Message: "store down"})
				continue
			}
			_ = d.Ack(transport.Ack{Status: transport.StatusOK})
		}
	}()

	// The agent side.
	s, err := nanomsg.Dial([]string{"inproc://example"})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for seq := uint64(1); seq <= 2; seq++ {
		err := s.Send(ctx, &transport.Envelope{
			Tenant: "acme", Agent: "web-1", Seq: seq, SentAt: at, Host: "web-1",
			Measurements: []meter.Measurement{
				{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12.5 * float64(seq), Time: at},
			},
		})
		fmt.Printf("seq %d: %v (retry later: %t)\n", seq, err, errors.Is(err, transport.ErrRetry))
	}
	// Output:
	// got cpu.util=12.5% from web-1 seq 1
	// seq 1: <nil> (retry later: false)
	// got cpu.util=25% from web-1 seq 2
	// seq 2: transport: receiver asked to retry: seq 2: store down (retry later: true)
}
