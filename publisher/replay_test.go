package publisher_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/req"

	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/seal"
)

// These tests run a publisher behind a sealed nanomsg receiver over TCP and
// send it frames as an attacker on the wire would: captured and replayed,
// or with a forged header. What was accepted is remembered once, in the
// publisher's de-duplication window.

// tenantKey is tenant acme's key, in a keyring and a sealer.
type tenantKey struct {
	kr     *seal.Keyring
	sealer *seal.Sealer
}

func newTenantKey(t *testing.T) tenantKey {
	t.Helper()
	k, err := seal.NewKey("k1")
	require.NoError(t, err)
	kr, err := seal.NewKeyring(&seal.KeyFile{Tenants: map[string]*seal.TenantKeys{"acme": {Keys: []seal.Key{k}}}})
	require.NoError(t, err)
	s, err := seal.NewSealer("acme", k)
	require.NoError(t, err)
	return tenantKey{kr, s}
}

// sealedPublisher runs a publisher writing to rec behind a sealed receiver
// listening on loopback TCP. stop stops it; it is also a cleanup.
func sealedPublisher(t *testing.T, tk tenantKey, rec sink.Sink, opts ...publisher.Option) (addr string, p *publisher.Publisher, stop func()) {
	t.Helper()
	nr, err := nanomsg.Listen("tcp://127.0.0.1:0", nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	o, err := seal.NewOpener(tk.kr)
	require.NoError(t, err)
	r := seal.NewReceiver(nr, o, seal.WithLogger(quiet))
	p, err = publisher.New(r, append([]publisher.Option{publisher.WithLogger(quiet), publisher.WithSink("rec", rec)}, opts...)...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			time.Sleep(100 * time.Millisecond) // let handshakes finish (a mangos race at Close)
			cancel()
			require.NoError(t, <-done)
			require.NoError(t, p.Close(context.Background()))
		})
	}
	t.Cleanup(stop)
	return nr.Addr(), p, stop
}

// wireRecorder is a Sender wrapper that keeps the frames it passes on, as
// an eavesdropper on the wire captures them.
type wireRecorder struct {
	transport.Sender
	mu     sync.Mutex
	frames [][]byte
}

func (w *wireRecorder) Send(ctx context.Context, env *transport.Envelope) error {
	frame, err := transport.AppendEnvelope(nil, env)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.frames = append(w.frames, frame)
	w.mu.Unlock()
	return w.Sender.Send(ctx, env)
}

// sealedAgent dials addr and seals with tk, recording the frames it sends.
func sealedAgent(t *testing.T, addr string, tk tenantKey) (transport.Sender, *wireRecorder) {
	t.Helper()
	ns, err := nanomsg.Dial([]string{addr}, nanomsg.WithLogger(quiet), nanomsg.WithReconnect(10*time.Millisecond, 100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = ns.Close() })
	w := &wireRecorder{Sender: ns}
	return seal.NewSender(w, tk.sealer), w
}

// rawSend sends frame on a bare REQ socket, as it is, and returns the ack.
func rawSend(t *testing.T, addr string, frame []byte) transport.Ack {
	t.Helper()
	s, err := req.NewSocket()
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.SetOption(mangos.OptionRecvDeadline, 5*time.Second))
	require.NoError(t, s.Dial(addr))
	require.NoError(t, s.Send(frame))
	b, err := s.Recv()
	require.NoError(t, err)
	a, err := transport.DecodeAck(b)
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond) // let the publisher's side of the handshake settle before Close
	return a
}

func acmeBatch(seq uint64) *transport.Envelope {
	env := envelope(seq, gauge("cpu", float64(seq)), gauge("mem", 2))
	env.Tenant = "acme"
	return env
}

// TestReplayWithinWindowNotWrittenTwice: a captured sealed frame, replayed
// within the window, authenticates, and the de-duplication answers it
// "duplicate" without a sink write. The window keeps one seq by count: it
// is its age that remembers the replayed one.
func TestReplayWithinWindowNotWrittenTwice(t *testing.T) {
	tk := newTenantKey(t)
	var rec sink.Recorder
	addr, p, stop := sealedPublisher(t, tk, &rec, publisher.WithDedupWindow(1, 0))
	agent, wire := sealedAgent(t, addr, tk)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, agent.Send(ctx, acmeBatch(5)))
	require.NoError(t, agent.Send(ctx, acmeBatch(6)))
	require.Len(t, wire.frames, 2)
	captured := wire.frames[0]

	for range 3 {
		a := rawSend(t, addr, captured)
		require.Equal(t, transport.StatusOK, a.Status)
		require.Equal(t, "duplicate", a.Message)
	}
	stop()
	require.Equal(t, 2, rec.Batches(), "the replays never reached the sink")
	require.Len(t, rec.Measurements(), 4)
	require.EqualValues(t, 3, p.Stats().Duplicates)
}

// TestReplayAcrossRestart: the same, with a spool, across a publisher
// restart: the window of the first run is in the spool.
func TestReplayAcrossRestart(t *testing.T) {
	tk := newTenantKey(t)
	dir := t.TempDir()
	var rec1 sink.Recorder
	window := publisher.WithDedupWindow(1, 0) // by count, seq 6 only: by age, both
	addr, _, stop := sealedPublisher(t, tk, &rec1, publisher.WithSpool(dir, publisher.SpoolNoSync()), window)
	agent, wire := sealedAgent(t, addr, tk)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, agent.Send(ctx, acmeBatch(5)))
	require.NoError(t, agent.Send(ctx, acmeBatch(6)))
	captured := wire.frames[0]
	require.Eventually(t, func() bool { return rec1.Batches() == 2 }, 5*time.Second, 5*time.Millisecond, "delivered from the spool")
	require.NoError(t, agent.Close())
	stop()

	var rec2 sink.Recorder
	addr2, p2, stop2 := sealedPublisher(t, tk, &rec2, publisher.WithSpool(dir, publisher.SpoolNoSync()), window)
	a := rawSend(t, addr2, captured)
	require.Equal(t, transport.StatusOK, a.Status)
	require.Equal(t, "duplicate", a.Message)
	stop2()
	require.Zero(t, rec2.Batches(), "the replay after the restart never reached the sink")
	require.Equal(t, 2, rec1.Batches())
	require.EqualValues(t, 1, p2.Stats().Duplicates)
}

// TestForgedHeaderDoesNotMarkSeq: frames with the header of a real batch
// (tenant, agent, seq) but no valid seal (unsealed, tampered, another
// key) are refused before the publisher sees them, so they cannot mark that
// seq as accepted: the real batch, sent next, is stored.
func TestForgedHeaderDoesNotMarkSeq(t *testing.T) {
	tk := newTenantKey(t)
	var rec sink.Recorder
	addr, p, stop := sealedPublisher(t, tk, &rec)

	// What the forger sends: the header of seq 7, measurements of its own.
	forged := acmeBatch(7)
	forged.Measurements[0].Value = 666
	unsealed, err := transport.AppendEnvelope(nil, forged)
	require.NoError(t, err)
	sealed, _, err := tk.sealer.Seal(nil, forged)
	require.NoError(t, err)
	tampered, err := transport.AppendEnvelope(nil, &sealed)
	require.NoError(t, err)
	i := bytes.Index(tampered, sealed.Sealed)
	require.Positive(t, i)
	tampered[i+3] ^= 0x20
	otherKey := newTenantKey(t) // acme's name, another key
	sealed2, _, err := otherKey.sealer.Seal(nil, forged)
	require.NoError(t, err)
	wrongKey, err := transport.AppendEnvelope(nil, &sealed2)
	require.NoError(t, err)

	for _, frame := range [][]byte{unsealed, tampered, wrongKey} {
		a := rawSend(t, addr, frame)
		require.Equal(t, transport.StatusRejected, a.Status, a.Message)
	}
	require.Zero(t, p.Stats().Envelopes, "nothing forged reached the publisher")

	agent, _ := sealedAgent(t, addr, tk)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, agent.Send(ctx, acmeBatch(7)))
	stop()
	require.Equal(t, 1, rec.Batches(), "the real seq 7 was stored")
	require.Equal(t, 7.0, rec.Measurements()[0].Value)
	require.Zero(t, p.Stats().Duplicates)
}
