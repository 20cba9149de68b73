package seal_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/req"
	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/seal"
	"github.com/meterkit/meter/transport/transporttest"
)

var quiet = slog.New(slog.DiscardHandler)

// noLeak checks, after the test's cleanups, that its goroutines are gone.
// Call it first.
func noLeak(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// inner is a transport to wrap: an in-memory Pipe, or nanomsg over TCP.
type inner struct {
	name string
	// pair returns a connected pair; nanomsg's Receiver listens with opts.
	pair func(t *testing.T, opts ...nanomsg.Option) (transport.Sender, transport.Receiver)
}

var inners = []inner{
	{"pipe", func(*testing.T, ...nanomsg.Option) (transport.Sender, transport.Receiver) { return transport.Pipe() }},
	{"nanomsg", func(t *testing.T, opts ...nanomsg.Option) (transport.Sender, transport.Receiver) {
		t.Helper()
		lo := []nanomsg.ListenOption{nanomsg.WithLogger(quiet)}
		do := []nanomsg.DialOption{nanomsg.WithLogger(quiet), nanomsg.WithReconnect(10*time.Millisecond, 200*time.Millisecond)}
		for _, o := range opts {
			lo, do = append(lo, o), append(do, o)
		}
		r, err := nanomsg.Listen("tcp://127.0.0.1:0", lo...)
		require.NoError(t, err)
		s, err := nanomsg.Dial([]string{r.Addr()}, do...)
		if err != nil {
			r.Close()
			require.NoError(t, err)
		}
		// Senders first, then a pause for in-flight handshakes: a listener
		// closed during one trips the race detector (mangos v3.4.2).
		t.Cleanup(func() { _ = s.Close(); time.Sleep(100 * time.Millisecond); _ = r.Close() })
		// And the connection up before a test closes the pair at once.
		transporttest.Establish(t, s, r)
		return s, r
	}},
}

// sealedPair wraps a pair of in: a Sender sealing with sl, a Receiver
// opening with o.
func sealedPair(t *testing.T, in inner, sl *seal.Sealer, o *seal.Opener, log *slog.Logger) (*seal.Sender, *seal.Receiver) {
	t.Helper()
	if log == nil {
		log = quiet
	}
	s, r := in.pair(t)
	return seal.NewSender(s, sl), seal.NewReceiver(r, o, seal.WithLogger(log))
}

// serveAll answers every envelope r hands out with OK, passing a copy to
// the channel it returns, until the test ends.
func serveAll(t *testing.T, r transport.Receiver) <-chan transport.Envelope {
	got := make(chan transport.Envelope, 1000)
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
			_ = d.Ack(transport.Ack{Status: transport.StatusOK})
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return got
}

// TestConformance: sealed pairs around a Pipe and around nanomsg keep the
// transport contract: what is sent arrives as it was sent.
func TestConformance(t *testing.T) {
	key := mustKey(t, "k1")
	kr, err := seal.NewKeyring(&seal.KeyFile{Tenants: map[string]*seal.TenantKeys{"tenant-a": {Keys: []seal.Key{key}}}})
	require.NoError(t, err)
	o := newOpener(t, kr)
	for _, in := range inners {
		t.Run(in.name, func(t *testing.T) {
			transporttest.Run(t, func(t *testing.T) (transport.Sender, transport.Receiver) {
				return sealedPair(t, in, mustSealer(t, "tenant-a", key), o, nil)
			}, transporttest.Sealing())
		})
	}
}

// TestSealedRoundTrip: both keys of a rotation open; the envelope handed
// out is the one sent; the frame on the wire holds no measurement.
func TestSealedRoundTrip(t *testing.T) {
	f := newFixture(t)
	for _, in := range inners {
		t.Run(in.name, func(t *testing.T) {
			noLeak(t)
			for i, k := range []seal.Key{f.acme1, f.acme2} {
				s, r := in.pair(t)
				rec := &recorder{Sender: s}
				snd := seal.NewSender(rec, mustSealer(t, "acme", k))
				rcv := seal.NewReceiver(r, newOpener(t, f.kr), seal.WithLogger(quiet))
				got := serveAll(t, rcv)
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				env := acmeEnvelope(uint64(i + 1))
				require.NoError(t, snd.Send(ctx, env))
				cancel()
				g := <-got
				require.Nil(t, g.Sealed)
				require.Nil(t, g.Auth)
				require.Equal(t, env.Seq, g.Seq)
				requireMeasurements(t, env.Measurements, g.Measurements)
				requireMeasurements(t, acmeEnvelope(uint64(i+1)).Measurements, env.Measurements) // not changed
				require.Empty(t, env.Sealed, "Send must not change the caller's envelope")
				wire := rec.last(t)
				require.Empty(t, wire.Measurements)
				require.NotEmpty(t, wire.Sealed)
				require.False(t, bytes.Contains(wire.Sealed, []byte(env.Measurements[0].Name)), "measurements in clear on the wire")
				require.EqualValues(t, 1, rcv.Stats().Opened)
			}
		})
	}
}

// recorder is a Sender wrapper that keeps the frame of the last envelope
// it passed on, as an eavesdropper on the wire would capture it.
type recorder struct {
	transport.Sender
	mu    sync.Mutex
	frame []byte
}

func (r *recorder) Send(ctx context.Context, env *transport.Envelope) error {
	frame, err := transport.AppendEnvelope(nil, env)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.frame = frame
	r.mu.Unlock()
	return r.Sender.Send(ctx, env)
}

// last decodes the last frame.
func (r *recorder) last(t *testing.T) *transport.Envelope {
	t.Helper()
	r.mu.Lock()
	frame := bytes.Clone(r.frame)
	r.mu.Unlock()
	var d transport.Decoder
	var env transport.Envelope
	require.NoError(t, d.Decode(frame, &env))
	return &env
}

// TestSealedRefusals: each refusal, over each transport, with its answer,
// its counter and its log line, which names the agent and not the key;
// nothing refused reaches Receive.
func TestSealedRefusals(t *testing.T) {
	f := newFixture(t)
	wrong := f.acme1
	wrong.Secret = bytes.Repeat([]byte{1}, seal.KeySize)
	other := mustKey(t, "k1")
	for _, in := range inners {
		t.Run(in.name, func(t *testing.T) {
			noLeak(t)
			var log logBuffer
			for _, tc := range []struct {
				name   string
				sealer *seal.Sealer
				tenant string
				want   error
				stat   func(seal.ReceiverStats) uint64
			}{
				{"unsealed", nil, "acme", transport.ErrRejected, func(s seal.ReceiverStats) uint64 { return s.Unsealed }},
				{"wrong key", mustSealer(t, "acme", wrong), "acme", transport.ErrRejected, func(s seal.ReceiverStats) uint64 { return s.WrongKey }},
				{"unknown tenant", mustSealer(t, "initech", other), "initech", transport.ErrRejected, func(s seal.ReceiverStats) uint64 { return s.UnknownTenant }},
				// The header says acme; the key is globex's.
				{"another tenant's key", mustSealer(t, "acme", f.globex), "acme", transport.ErrRejected, func(s seal.ReceiverStats) uint64 { return s.WrongKey }},
			} {
				t.Run(tc.name, func(t *testing.T) {
					s, r := in.pair(t)
					var snd transport.Sender = s
					if tc.sealer != nil {
						snd = seal.NewSender(s, tc.sealer)
					}
					rcv := seal.NewReceiver(r, newOpener(t, f.kr), seal.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
					got := serveAll(t, rcv)
					ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
					defer cancel()
					env := acmeEnvelope(1)
					env.Tenant = tc.tenant
					err := snd.Send(ctx, env)
					require.ErrorIs(t, err, tc.want)
					// The configuration refuses the sender: not the batch's fault.
					require.ErrorIs(t, err, transport.ErrRefused)
					require.False(t, transport.IsPermanent(err))
					require.EqualValues(t, 1, tc.stat(rcv.Stats()))
					require.Zero(t, rcv.Stats().Opened)
					require.Empty(t, got)
				})
			}
			out := log.String()
			require.Contains(t, out, "agent=agent-7")
			requireNoSecret(t, f, out)
			for _, k := range []seal.Key{wrong, other} {
				require.NotContains(t, out, string(k.Secret))
			}
		})
	}
}

// rawReq is a bare REQ socket: frames are sent as they are.
func rawReq(t *testing.T, addr string) mangos.Socket {
	t.Helper()
	s, err := req.NewSocket()
	require.NoError(t, err)
	require.NoError(t, s.SetOption(mangos.OptionRecvDeadline, 5*time.Second))
	require.NoError(t, s.SetOption(mangos.OptionRetryTime, time.Duration(0)))
	require.NoError(t, s.Dial(addr))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func roundTrip(t *testing.T, s mangos.Socket, frame []byte) transport.Ack {
	t.Helper()
	require.NoError(t, s.Send(frame))
	b, err := s.Recv()
	require.NoError(t, err)
	a, err := transport.DecodeAck(b)
	require.NoError(t, err)
	return a
}

func sealFrame(t *testing.T, s *seal.Sealer, env *transport.Envelope, at time.Time) []byte {
	t.Helper()
	sealed, _, err := s.SealAt(nil, env, at)
	require.NoError(t, err)
	frame, err := transport.AppendEnvelope(nil, &sealed)
	require.NoError(t, err)
	return frame
}

// listenSealed listens on tcp and wraps the Receiver in one opening with o.
func listenSealed(t *testing.T, o *seal.Opener, opts ...nanomsg.ListenOption) (*nanomsg.Receiver, *seal.Receiver) {
	t.Helper()
	r, err := nanomsg.Listen("tcp://127.0.0.1:0", append([]nanomsg.ListenOption{nanomsg.WithLogger(quiet)}, opts...)...)
	require.NoError(t, err)
	// A cleanup, not a defer: it runs after the senders' cleanups, then
	// pauses for in-flight handshakes.
	t.Cleanup(func() { time.Sleep(100 * time.Millisecond); require.NoError(t, r.Close()) })
	return r, seal.NewReceiver(r, o, seal.WithLogger(quiet))
}

// TestReplayThroughReceiver: a captured frame replayed within the window
// is opened and handed out again (the publisher's de-duplication answers
// it); one sealed out of the window is answered retry; tampered ones are
// rejected and never handed out.
func TestReplayThroughReceiver(t *testing.T) {
	noLeak(t)
	f := newFixture(t)
	nr, r := listenSealed(t, newOpener(t, f.kr, seal.WithWindow(time.Minute)))
	got := serveAll(t, r)
	raw := rawReq(t, nr.Addr())
	s := mustSealer(t, "acme", f.acme1)

	frame := sealFrame(t, s, acmeEnvelope(5), time.Now())
	require.Equal(t, transport.Ack{Seq: 5, Version: transport.MaxVersion}, roundTrip(t, raw, frame))
	require.Len(t, (<-got).Measurements, 6)
	// The same frame again, as an attacker who captured it would send it.
	require.Equal(t, transport.Ack{Seq: 5, Version: transport.MaxVersion}, roundTrip(t, raw, frame))
	require.Equal(t, uint64(5), (<-got).Seq, "handed out again, for the de-duplication to drop")

	a := roundTrip(t, raw, sealFrame(t, s, acmeEnvelope(6), time.Now().Add(-2*time.Minute)))
	require.Equal(t, transport.StatusRetry, a.Status)
	require.Contains(t, a.Message, "window")
	require.EqualValues(t, 1, r.Stats().OutOfWindow)

	bad := bytes.Clone(frame)
	bad[len(bad)-1] ^= 0x80 // in the auth field's key check
	bad2 := bytes.Clone(frame)
	bad2[len(bad2)-len(frame)/2] ^= 0x01 // in the sealed data
	require.Equal(t, transport.StatusRejected, roundTrip(t, raw, bad).Status)
	require.Equal(t, transport.StatusRejected, roundTrip(t, raw, bad2).Status)
	st := r.Stats()
	require.EqualValues(t, 1, st.Tampered)
	require.EqualValues(t, 1, st.WrongKey)
	require.EqualValues(t, 2, st.Opened)
	require.Empty(t, got)
}

// TestHostileTraffic: while a good sealed agent sends, raw REQ sockets send
// garbage, truncated, oversized, replayed and tampered frames. Every good
// measurement arrives, and the counters show each kind of refusal: the
// frame-level ones in nanomsg's, the seal's in the wrapper's.
func TestHostileTraffic(t *testing.T) {
	noLeak(t)
	f := newFixture(t)
	const maxFrame = 16 << 10
	nr, r := listenSealed(t, newOpener(t, f.kr), nanomsg.WithMaxFrameSize(maxFrame))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	var mu sync.Mutex
	seen := map[uint64]int{} // seq -> measurements handed out
	var wg, served sync.WaitGroup
	served.Add(1)
	go func() {
		defer served.Done()
		for {
			d, err := r.Receive(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			seen[d.Envelope.Seq] += len(d.Envelope.Measurements)
			mu.Unlock()
			_ = d.Ack(transport.Ack{Status: transport.StatusOK})
		}
	}()

	good := mustSealer(t, "acme", f.acme2)
	ns, err := nanomsg.Dial([]string{nr.Addr()}, nanomsg.WithReconnect(10*time.Millisecond, 100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ns.Close()) })
	snd := seal.NewSender(ns, good)
	// Connect the good agent before the attack, so the listener's handshake
	// and Close never race (a mangos data race).
	require.NoError(t, snd.Send(ctx, acmeEnvelope(1)))

	captured := sealFrame(t, good, acmeEnvelope(1000), time.Now())
	const rounds = 20
	attackers := []struct {
		name  string
		frame func(i int) []byte
	}{
		{"garbage", func(i int) []byte { return bytes.Repeat([]byte{0xff, byte(i)}, 10+i) }},
		{"truncated", func(i int) []byte { return captured[:len(captured)/2+i] }},
		{"oversized", func(int) []byte { return make([]byte, maxFrame+1) }},
		{"replayed", func(int) []byte { return captured }},
		{"tampered", func(i int) []byte {
			b := bytes.Clone(captured)
			b[len(b)-seal.CheckSize-1-i%20] ^= 0x40 // in the sealing time or nonce
			return b
		}},
		{"wrong tenant", func(i int) []byte {
			env := acmeEnvelope(uint64(2000 + i))
			env.Tenant = "globex"
			s, _ := seal.NewSealer("globex", f.acme1)
			return sealFrame(t, s, env, time.Now())
		}},
	}
	acks := make([][]transport.Ack, len(attackers))
	for i, a := range attackers {
		raw := rawReq(t, nr.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range rounds {
				if err := raw.Send(a.frame(j)); err != nil {
					return
				}
				b, err := raw.Recv()
				if err != nil {
					return
				}
				ack, _ := transport.DecodeAck(b)
				acks[i] = append(acks[i], ack)
			}
		}()
	}
	for seq := uint64(2); seq <= 101; seq++ {
		require.NoError(t, snd.Send(ctx, acmeEnvelope(seq)))
	}
	wg.Wait()
	cancel()
	served.Wait()

	for seq := uint64(1); seq <= 101; seq++ {
		require.Equal(t, 6, seen[seq], "seq %d", seq)
	}
	// Every replay of the captured frame authenticates and is handed out:
	// dropping it is the de-duplication's job (see package publisher).
	require.Equal(t, 6*rounds, seen[1000])
	for i, a := range attackers {
		require.Len(t, acks[i], rounds, a.name)
	}
	nst, st := nr.Stats(), r.Stats()
	t.Logf("nanomsg: %+v; seal: %+v", nst, st)
	require.EqualValues(t, rounds, nst.TooLarge, "oversized")
	require.GreaterOrEqual(t, nst.Malformed, uint64(2*rounds), "garbage and truncated")
	require.EqualValues(t, rounds, st.Tampered)
	require.EqualValues(t, rounds, st.WrongKey+st.UnknownTenant, "wrong tenant")
	require.EqualValues(t, 101+rounds, st.Opened)
	for _, a := range acks[3] {
		require.Equal(t, transport.StatusOK, a.Status, "replays are answered by the receiver's user")
	}
	for _, i := range []int{0, 1, 2, 4, 5} {
		for _, a := range acks[i] {
			require.Equal(t, transport.StatusRejected, a.Status, attackers[i].name)
			require.False(t, strings.Contains(a.Message, string(f.acme2.Secret)))
		}
	}
}

// TestFrameLimit: the sealing Sender reports the inner limit less its
// overhead, and an envelope whose plain frame is within it goes through
// sealed; the capability is its own, not the inner's.
func TestFrameLimit(t *testing.T) {
	noLeak(t)
	f := newFixture(t)
	const maxFrame = 8 << 10
	nr, r := listenSealed(t, newOpener(t, f.kr), nanomsg.WithMaxFrameSize(maxFrame))
	got := serveAll(t, r)
	ns, err := nanomsg.Dial([]string{nr.Addr()}, nanomsg.WithMaxFrameSize(maxFrame))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ns.Close()) })
	require.Equal(t, maxFrame, ns.MaxFrameSize())
	snd := seal.NewSender(ns, mustSealer(t, "acme", f.acme1))
	var fl transport.FrameLimiter = snd
	limit := fl.MaxFrameSize()
	require.Less(t, limit, maxFrame)
	require.Greater(t, limit, maxFrame-200)
	p, _ := transport.Pipe()
	require.Zero(t, seal.NewSender(p, mustSealer(t, "acme", f.acme1)).MaxFrameSize(), "no inner limit, none")

	// Grow an envelope (without a tenant: the Sealer fills it in) up to the
	// limit, measurement by measurement, then by the resource id's length.
	env := acmeEnvelope(1)
	env.Tenant = ""
	size := func() int { b, err := transport.AppendEnvelope(nil, env); require.NoError(t, err); return len(b) }
	for size() < limit-200 {
		env.Measurements = append(env.Measurements, env.Measurements[0])
	}
	last := &env.Measurements[len(env.Measurements)-1]
	for size() < limit {
		last.ResourceID += "x"
	}
	if size() > limit {
		last.ResourceID = last.ResourceID[:len(last.ResourceID)-1]
	}
	require.LessOrEqual(t, limit-size(), 1)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, snd.Send(ctx, env), "a frame within the sealing Sender's limit")
	require.Len(t, (<-got).Measurements, len(env.Measurements))
	last.ResourceID += strings.Repeat("x", 100)
	require.ErrorIs(t, snd.Send(ctx, env), transport.ErrTooLarge)
}

// TestUnwrap: read-only capabilities of the inner transport are found
// through the wrappers; the wrappers' own come first.
func TestUnwrap(t *testing.T) {
	f := newFixture(t)
	nr, r := listenSealed(t, newOpener(t, f.kr))
	require.Same(t, nr, transport.UnwrapReceiver(r))
	type nanomsgStats interface{ Stats() nanomsg.ReceiverStats }
	st, ok := transport.As[nanomsgStats](r)
	require.True(t, ok)
	require.Same(t, nr, st)
	addr, ok := transport.As[interface{ Addr() string }](r)
	require.True(t, ok)
	require.Equal(t, nr.Addr(), addr.Addr())
	own, ok := transport.As[interface{ Stats() seal.ReceiverStats }](r)
	require.True(t, ok)
	require.Same(t, r, own)

	p, _ := transport.Pipe()
	s := seal.NewSender(p, mustSealer(t, "acme", f.acme1))
	require.Equal(t, p, transport.UnwrapSender(s))
	_, ok = transport.As[nanomsgStats](s)
	require.False(t, ok)
	require.Nil(t, transport.UnwrapSender(p))
}

// TestUnsealedAllowed: with AllowUnsealed, an unsealed envelope is handed
// out unchecked and counted as passed.
func TestUnsealedAllowed(t *testing.T) {
	f := newFixture(t)
	for _, in := range inners {
		t.Run(in.name, func(t *testing.T) {
			s, r := in.pair(t)
			rcv := seal.NewReceiver(r, newOpener(t, f.kr, seal.AllowUnsealed()), seal.WithLogger(quiet))
			got := serveAll(t, rcv)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			require.NoError(t, s.Send(ctx, acmeEnvelope(1)))
			require.NoError(t, seal.NewSender(s, mustSealer(t, "acme", f.acme1)).Send(ctx, acmeEnvelope(2)))
			var ms [][]meter.Measurement
			for range 2 {
				ms = append(ms, (<-got).Measurements)
			}
			requireMeasurements(t, acmeEnvelope(1).Measurements, ms[0])
			requireMeasurements(t, acmeEnvelope(2).Measurements, ms[1])
			require.Equal(t, seal.ReceiverStats{Opened: 1, Passed: 1}, rcv.Stats())
		})
	}
}

// TestSendOtherTenant: an envelope of another tenant than the Sealer's
// cannot be sealed; it is not sent, and the error says that sending it
// again is useless.
func TestSendOtherTenant(t *testing.T) {
	f := newFixture(t)
	s, r := transport.Pipe()
	defer r.Close()
	snd := seal.NewSender(s, mustSealer(t, "acme", f.acme1))
	env := acmeEnvelope(1)
	env.Tenant = "globex"
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	err := snd.Send(ctx, env)
	require.ErrorIs(t, err, transport.ErrRejected)
	require.True(t, transport.IsPermanent(err), "an envelope that cannot be sealed is a permanent error")
	require.ErrorContains(t, err, `tenant "globex"`)
	// The tenant is found through the capability, for the agent to refuse
	// such a configuration at once.
	tn, ok := transport.As[interface{ Tenant() string }](snd)
	require.True(t, ok)
	require.Equal(t, "acme", tn.Tenant())
	d, err := r.Receive(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "nothing was sent")
	require.Nil(t, d)
}

// A sealing Sender never offers a raw send, and raw send is not found below
// it through Unwrap: a stored frame must be sealed at each attempt.
func TestSenderHidesRawSend(t *testing.T) {
	inner, err := nanomsg.Dial([]string{"tcp://127.0.0.1:1"}, nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	_, ok := transport.AsRawSender(inner)
	require.True(t, ok, "nanomsg's Sender sends raw frames")
	key, err := seal.NewKey("k1")
	require.NoError(t, err)
	sl, err := seal.NewSealer("acme", key)
	require.NoError(t, err)
	s := seal.NewSender(inner, sl)
	defer s.Close()
	_, ok = transport.AsRawSender(s)
	require.False(t, ok)
	_, ok = any(s).(transport.RawSender)
	require.False(t, ok)
}
