package seal_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/seal"
)

// The sealing Sender prefers the inner preference less its overhead, the
// same overhead it takes from the limit, and none without an inner one.
func TestPreferredFrameSize(t *testing.T) {
	noLeak(t)
	f := newFixture(t)
	// No peer: only what the Senders report is checked.
	ns, err := nanomsg.Dial([]string{"tcp://127.0.0.1:1"}, nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ns.Close()) })
	snd := seal.NewSender(ns, mustSealer(t, "acme", f.acme1))
	var fp transport.FramePreferrer = snd
	overhead := ns.MaxFrameSize() - snd.MaxFrameSize()
	require.Positive(t, overhead)
	require.Equal(t, ns.PreferredFrameSize()-overhead, fp.PreferredFrameSize())

	p, _ := transport.Pipe()
	require.Zero(t, seal.NewSender(p, mustSealer(t, "acme", f.acme1)).PreferredFrameSize(), "no inner preference, none")
}
