package agent_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/seal"
)

// rawPipe is a transport.Pipe sender that also takes frames as they are
// (transport.RawSender), counting how each batch came.
type rawPipe struct {
	transport.Sender
	raw, decoded atomic.Int64
}

func (p *rawPipe) Send(ctx context.Context, env *transport.Envelope) error {
	p.decoded.Add(1)
	return p.Sender.Send(ctx, env)
}

func (p *rawPipe) SendRaw(ctx context.Context, frame []byte, seq uint64) error {
	p.raw.Add(1)
	var dec transport.Decoder
	var env transport.Envelope
	if err := dec.Decode(frame, &env); err != nil {
		return err
	}
	if env.Seq != seq {
		return transport.ErrMalformed
	}
	return p.Sender.Send(ctx, &env)
}

// passing wraps a Sender without changing what goes on the wire, and
// offers Unwrap for read-only capabilities; it does not forward SendRaw.
type passing struct{ transport.Sender }

func (p passing) Unwrap() transport.Sender { return p.Sender }

// changing wraps a Sender and changes the envelope, as sealing does; like
// seal.Sender it offers Unwrap for read-only capabilities, and the agent
// must not go around it to the raw send below.
type changing struct {
	transport.Sender
	sends atomic.Int64
}

func (c *changing) Unwrap() transport.Sender { return c.Sender }

func (c *changing) Send(ctx context.Context, env *transport.Envelope) error {
	c.sends.Add(1)
	e := *env
	e.Tenant = "changed"
	return c.Sender.Send(ctx, &e)
}

// A spooling agent sends the stored frames as they are to a sender that
// takes them itself, and decodes them for one that does not: raw send is
// never taken from below a wrapper, whose Unwrap is for read-only
// capabilities (a sealing wrapper has one).
func TestSpoolSendsStoredFramesAsTheyAre(t *testing.T) {
	for _, tc := range []struct {
		name        string
		wrap        func(*rawPipe) transport.Sender
		raw         bool
		wantChanged bool
	}{
		{"raw sender", func(p *rawPipe) transport.Sender { return p }, true, false},
		{"not through Unwrap", func(p *rawPipe) transport.Sender { return passing{p} }, false, false},
		{"wrapper that changes the envelope", func(p *rawPipe) transport.Sender { return &changing{Sender: p} }, false, true},
		{"sealing", func(p *rawPipe) transport.Sender {
			k, err := seal.NewKey("k1")
			require.NoError(t, err)
			sl, err := seal.NewSealer("t", k)
			require.NoError(t, err)
			return seal.NewSender(p, sl)
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, r := transport.Pipe()
			defer s.Close()
			var c collector
			stopRecv := c.run(t, r)
			p := &rawPipe{Sender: s}
			a, err := agent.New(tc.wrap(p), agent.WithLogger(quiet), agent.WithTenant("t"), agent.WithBatch(5, time.Hour),
				agent.WithSpool(t.TempDir()))
			require.NoError(t, err)
			stop := start(t, a)
			for i := range 20 {
				require.NoError(t, a.Add(gauge("g", float64(i))))
			}
			require.Eventually(t, func() bool { return a.Stats().AckedMeasurements == 20 }, 5*time.Second, time.Millisecond)
			require.NoError(t, stop())
			stopRecv()
			if tc.raw {
				require.Equal(t, int64(4), p.raw.Load())
				require.Zero(t, p.decoded.Load())
			} else {
				require.Zero(t, p.raw.Load())
				require.Equal(t, int64(4), p.decoded.Load())
			}
			sealed := tc.name == "sealing"
			if !sealed { // sealed batches hold no measurements until opened
				got := c.measurements()
				require.Len(t, got, 20)
				for i, m := range got {
					require.Equal(t, float64(i), m.Value)
				}
			}
			c.mu.Lock()
			require.Len(t, c.envs, 4)
			for _, e := range c.envs {
				require.Equal(t, tc.wantChanged, e.Tenant == "changed")
				require.Equal(t, sealed, len(e.Sealed) > 0, "sealed exactly when the sealing wrapper is there")
			}
			c.mu.Unlock()
		})
	}
}
