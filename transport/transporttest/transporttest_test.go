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
