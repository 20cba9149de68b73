package transporttest_test

import (
	"testing"

	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/transporttest"
)

// The in-memory pipe of package transport is the reference the suite is
// checked against.
func TestPipe(t *testing.T) {
	transporttest.Run(t, func(*testing.T) (transport.Sender, transport.Receiver) {
		return transport.Pipe()
	})
}

// Establish leaves a pair as it found it: the whole suite passes after it.
func TestPipeEstablished(t *testing.T) {
	transporttest.Run(t, func(t *testing.T) (transport.Sender, transport.Receiver) {
		s, r := transport.Pipe()
		transporttest.Establish(t, s, r)
		return s, r
	})
}
