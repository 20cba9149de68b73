package transport_test

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/meterkit/meter/transport"
)

// countingSender is a user's wrapper: it counts Sends and says what it
// wraps, so that capabilities of the transport below that only read stay
// reachable.
type countingSender struct {
	transport.Sender
	sends atomic.Int64
}

func (c *countingSender) Send(ctx context.Context, env *transport.Envelope) error {
	c.sends.Add(1)
	return c.Sender.Send(ctx, env)
}

func (c *countingSender) Unwrap() transport.Sender { return c.Sender }

// addrSender stands for a transport with a read-only capability (an
// address) and a frame limit.
type addrSender struct{ transport.Sender }

func (addrSender) Addr() string      { return "tcp://publisher-1:7711" }
func (addrSender) MaxFrameSize() int { return 1 << 20 }

// A read-only capability is found through any number of wrappers with As;
// one that changes the frame, such as FrameLimiter, is asserted on the
// value itself: a wrapper that does not implement it hides it.
func ExampleAs() {
	s, r := transport.Pipe()
	defer r.Close()
	var sender transport.Sender = &countingSender{Sender: addrSender{s}}

	if a, ok := transport.As[interface{ Addr() string }](sender); ok {
		fmt.Println("sending to", a.Addr())
	}
	_, limited := sender.(transport.FrameLimiter)
	fmt.Println("frame limit through the wrapper:", limited)
	fmt.Println("wraps:", transport.UnwrapSender(sender) != nil)
	// Output:
	// sending to tcp://publisher-1:7711
	// frame limit through the wrapper: false
	// wraps: true
}
