package nanomsg_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/transporttest"
)

// The Receiver says in every ack that it reads transport.MaxVersion, unless
// the ack names a version itself, and the Sender reports the version of the
// latest ack: transport.Version before any, as after an ack that names
// version 1 (a receiver that reads version 1 only).
func TestPeerVersion(t *testing.T) {
	noLeak(t)
	s, r := pair(t, "tcp://127.0.0.1:0")
	require.Equal(t, uint32(transport.Version), s.PeerVersion(), "before any ack")
	ctx := t.Context()
	for _, tc := range []struct {
		ack  uint32 // the Version the receiver's user gives its ack
		want uint32
	}{
		{0, transport.MaxVersion},
		{1, 1},
		{0, transport.MaxVersion},
	} {
		done := make(chan error, 1)
		go func() {
			d, err := r.Receive(ctx)
			if err == nil {
				err = d.Ack(transport.Ack{Status: transport.StatusOK, Version: tc.ack})
			}
			done <- err
		}()
		require.NoError(t, s.Send(ctx, transporttest.Envelope(1)))
		require.NoError(t, <-done)
		require.Equal(t, tc.want, s.PeerVersion(), "after an ack naming version %d", tc.ack)
	}
}
