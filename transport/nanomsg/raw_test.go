package nanomsg_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/transporttest"
)

// SendRaw puts a stored frame on the wire as it is: the receiver gets the
// envelope Send would have sent, with the same answers and limits.
func TestSendRaw(t *testing.T) {
	noLeak(t)
	const limit = 4096
	r, err := nanomsg.Listen("tcp://127.0.0.1:0", nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	got := make(chan transport.Envelope, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d, err := r.Receive(ctx)
			if err != nil {
				return
			}
			env := d.Envelope
			env.Measurements = slices.Clone(env.Measurements)
			got <- env
			status := transport.StatusOK
			if env.Seq == 99 {
				status = transport.StatusRejected
			}
			_ = d.Ack(transport.Ack{Status: status, Message: "no"})
		}
	}()
	s, err := nanomsg.Dial([]string{r.Addr()}, nanomsg.WithLogger(quiet), nanomsg.WithMaxFrameSize(limit))
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		cancel()
		<-done
		time.Sleep(100 * time.Millisecond) // see closeAfter
		require.NoError(t, r.Close())
	})
	raw, ok := transport.AsRawSender(s)
	require.True(t, ok)

	sctx, stop := context.WithTimeout(t.Context(), 5*time.Second)
	defer stop()
	env := transporttest.Envelope(7)
	frame, err := transport.AppendEnvelope(nil, env)
	require.NoError(t, err)
	require.NoError(t, raw.SendRaw(sctx, frame, 7))
	g := <-got
	require.Equal(t, env.Seq, g.Seq)
	require.Equal(t, env.Agent, g.Agent)
	require.Len(t, g.Measurements, len(env.Measurements))
	for i := range env.Measurements {
		require.Equal(t, env.Measurements[i].Name, g.Measurements[i].Name)
		require.Equal(t, env.Measurements[i].Value, g.Measurements[i].Value)
	}

	rejected := transporttest.Envelope(99)
	frame, err = transport.AppendEnvelope(nil, rejected)
	require.NoError(t, err)
	require.ErrorIs(t, raw.SendRaw(sctx, frame, 99), transport.ErrRejected)
	<-got

	require.ErrorIs(t, raw.SendRaw(sctx, make([]byte, limit+1), 8), transport.ErrTooLarge)
	require.Equal(t, uint64(2), s.Stats().Sent)
	require.Equal(t, uint64(1), s.Stats().Errors)
	require.NoError(t, s.Close())
	require.ErrorIs(t, raw.SendRaw(sctx, frame, 99), transport.ErrClosed)
}
