package agent_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/rep"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/transport"
)

// stated is n gauges of meter name labelled as the levels stage labels
// them: the last label is meterkit.state.
func stated(name string, n int, level string) []meter.Measurement {
	ms := gauges(name, n)
	for i := range ms {
		ms[i].Labels = []meter.Label{{Key: "disk", Value: "sda"}, {Key: meter.StateLabel, Value: level}}
	}
	return ms
}

// A publisher of this release says in its acks that it reads envelope
// version 2: the agent's first batch goes out as version 1, those opened
// after the first ack as version 2, over real mangos sockets, smaller by
// the state labels and with every label as it was.
func TestEnvelopeVersionFollowsThePublisher(t *testing.T) {
	r := listenTCP(t, "tcp://127.0.0.1:0")
	defer r.Close()
	type batch struct {
		version uint32
		size    int
		labels  [][]meter.Label
	}
	got := make(chan batch, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			d, err := r.Receive(ctx)
			if err != nil {
				return
			}
			b := batch{version: d.Envelope.Version, size: d.Size}
			for _, m := range d.Envelope.Measurements {
				b.labels = append(b.labels, append([]meter.Label(nil), m.Labels...))
			}
			_ = d.Ack(transport.Ack{Status: transport.StatusOK})
			got <- b
		}
	}()
	s := dialTCP(t, r.Addr())
	require.Equal(t, uint32(transport.Version), s.PeerVersion(), "before any ack")
	a, err := agent.New(s, agent.WithHost("h"), agent.WithLogger(quiet), agent.WithBatch(100, time.Hour))
	require.NoError(t, err)
	defer a.Close(context.Background())
	stop := start(t, a)
	defer stop()
	var batches []batch
	for _, level := range []string{meter.StateOK, meter.StateCritical} {
		require.NoError(t, a.Add(stated("disk.used", 100, level)...))
		select {
		case b := <-got:
			batches = append(batches, b)
		case <-time.After(10 * time.Second):
			t.Fatalf("no batch: %+v", a.Stats())
		}
		n := uint64(100 * len(batches))
		require.Eventually(t, func() bool { return a.Stats().AckedMeasurements == n }, 10*time.Second, time.Millisecond)
	}
	require.Equal(t, uint32(1), batches[0].version, "before the publisher said what it reads")
	require.Equal(t, uint32(2), batches[1].version, "after")
	require.Equal(t, uint32(transport.MaxVersion), s.PeerVersion())
	// The label meterkit.state is 22 bytes with "ok"; with "critical", 28
	// as a label and 2 as the state field: the second batch is 20 bytes a
	// measurement smaller.
	require.Equal(t, batches[0].size-100*20, batches[1].size, "frame sizes")
	for i, b := range batches {
		level := []string{meter.StateOK, meter.StateCritical}[i]
		for _, ls := range b.labels {
			require.Equal(t, []meter.Label{{Key: "disk", Value: "sda"}, {Key: meter.StateLabel, Value: level}}, ls)
		}
	}
	require.Zero(t, a.Stats().Downgraded)
}

// oldPublisher is a publisher of an earlier release, as a raw REP socket:
// from the moment old is set it reads envelope version 1 only, rejects a
// newer one as its decoder does, and names no version in its acks; before
// that it says it reads version 2. It records each envelope it accepts.
type oldPublisher struct {
	old      atomic.Bool
	mu       sync.Mutex
	versions []uint32 // of every envelope received, rejected ones too
	seqs     []uint64 // accepted
	ms       []meter.Measurement
}

func (p *oldPublisher) serve(t *testing.T) (addr string) {
	sock, err := rep.NewSocket()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sock.Close() })
	l, err := sock.NewListener("tcp://127.0.0.1:0", nil)
	require.NoError(t, err)
	require.NoError(t, l.Listen())
	go func() {
		var d transport.Decoder
		var env transport.Envelope
		for {
			req, err := sock.RecvMsg()
			if err != nil {
				return
			}
			derr := d.Decode(req.Body, &env)
			var ack transport.Ack
			p.mu.Lock()
			switch {
			case derr != nil:
				ack = transport.Ack{Status: transport.StatusRejected, Reason: transport.ReasonBadBatch, Message: derr.Error()}
			case p.old.Load() && env.Version > 1:
				// What a decoder of an earlier release answers.
				p.versions = append(p.versions, env.Version)
				ack = transport.Ack{Status: transport.StatusRejected, Reason: transport.ReasonBadBatch,
					Message: "transport: malformed frame: version at byte 0: version 2 is newer than 1, the newest this decoder knows"}
			default:
				p.versions = append(p.versions, env.Version)
				p.seqs = append(p.seqs, env.Seq)
				for _, m := range env.Measurements {
					m.Labels = append([]meter.Label(nil), m.Labels...)
					p.ms = append(p.ms, m)
				}
				ack = transport.Ack{Seq: env.Seq}
				if !p.old.Load() {
					ack.Version = 2
				}
			}
			p.mu.Unlock()
			req.Free()
			reply := mangos.NewMessage(64)
			reply.Body = transport.AppendAck(reply.Body, ack)
			if err := sock.SendMsg(reply); err != nil {
				reply.Free()
				return
			}
		}
	}()
	return l.Address()
}

func (p *oldPublisher) accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ms)
}

// A batch written as envelope version 2 for a publisher that read it, and
// then sent to one of an earlier release (a downgrade, a failover), is
// rejected there and sent again as version 1, same Seq, with its state
// labels: nothing is lost or counted rejected, and the next batches are
// version 1 from the start. Through the raw frame path (memory queue and
// spool) and the envelope path (a wrapping sender).
func TestOlderPublisherGetsVersionOne(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     func(t *testing.T) []agent.Option
		wrap     bool
		versions []uint32 // of a, b, c (rejected), c again, d
	}{
		{"memory", func(*testing.T) []agent.Option { return nil }, false, []uint32{1, 2, 2, 1, 1}},
		{"envelope", func(*testing.T) []agent.Option { return nil }, true, []uint32{1, 2, 2, 1, 1}},
		// A spool holds version 1 only, for an agent of an earlier release.
		{"spool", func(t *testing.T) []agent.Option { return []agent.Option{agent.WithSpool(t.TempDir())} }, false, []uint32{1, 1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p oldPublisher
			addr := p.serve(t)
			var s transport.Sender = dialTCP(t, addr)
			if tc.wrap {
				s = passing{s} // not a RawSender: batches go as envelopes; PeerVersion is found through Unwrap
			}
			var log syncLog
			opts := append([]agent.Option{agent.WithHost("h"), agent.WithLogger(slogTo(&log)), agent.WithBatch(50, time.Hour),
				agent.WithBackoff(5*time.Millisecond, 20*time.Millisecond)}, tc.opts(t)...)
			a, err := agent.New(s, opts...)
			require.NoError(t, err)
			defer a.Close(context.Background())
			stop := start(t, a)
			defer stop()

			wait := func(n int) {
				t.Helper()
				// Acknowledged too: the agent has read the publisher's answer.
				require.Eventually(t, func() bool { return p.accepted() == n && a.Stats().AckedMeasurements == uint64(n) },
					10*time.Second, time.Millisecond, "%+v", a.Stats())
			}
			require.NoError(t, a.Add(stated("a", 50, meter.StateOK)...)) // version 1: no ack yet
			wait(50)
			require.NoError(t, a.Add(stated("b", 50, meter.StateWarning)...)) // version 2: the publisher said so
			wait(100)
			p.old.Store(true)                                               // the publisher is replaced by one of an earlier release
			require.NoError(t, a.Add(stated("c", 50, meter.StateAlert)...)) // version 2, rejected, then 1
			wait(150)
			require.NoError(t, a.Add(stated("d", 50, meter.StateStale)...)) // version 1: its acks name none
			wait(200)

			st := a.Stats()
			require.Zero(t, st.Rejected+st.Failed+st.Dropped)
			require.Equal(t, uint64(200), st.AckedMeasurements)
			p.mu.Lock()
			defer p.mu.Unlock()
			require.Equal(t, tc.versions, p.versions)
			require.Equal(t, []uint64{p.seqs[0], p.seqs[0] + 1, p.seqs[0] + 2, p.seqs[0] + 3}, p.seqs, "c keeps its Seq")
			for i, m := range p.ms {
				level := []string{meter.StateOK, meter.StateWarning, meter.StateAlert, meter.StateStale}[i/50]
				require.Equal(t, []meter.Label{{Key: "disk", Value: "sda"}, {Key: meter.StateLabel, Value: level}}, m.Labels, "measurement %d", i)
				require.Equal(t, float64(i%50), m.Value)
			}
			if len(tc.versions) == 5 {
				require.Equal(t, uint64(1), st.Downgraded)
				require.Contains(t, log.String(), "sending such batches again as version 1")
			} else {
				require.Zero(t, st.Downgraded)
			}
		})
	}
}

// slogTo logs text to w.
func slogTo(w *syncLog) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
