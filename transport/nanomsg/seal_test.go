package nanomsg_test

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

	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/seal"
	"github.com/meterkit/meter/transport/transporttest"
)

// tenants is a keyring with tenants "acme" (keys k1 and k2, both valid, as
// during a rotation) and "globex" (k1).
type tenants struct {
	acme1, acme2, globex seal.Key
	kr                   *seal.Keyring
}

func newTenants(t testing.TB) *tenants {
	t.Helper()
	var ts tenants
	for _, k := range []*seal.Key{&ts.acme1, &ts.acme2, &ts.globex} {
		var err error
		*k, err = seal.NewKey("k1")
		require.NoError(t, err)
	}
	ts.acme2.ID = "k2"
	var err error
	ts.kr, err = seal.NewKeyring(&seal.KeyFile{Tenants: map[string]*seal.TenantKeys{
		"acme":   {Keys: []seal.Key{ts.acme1, ts.acme2}},
		"globex": {Keys: []seal.Key{ts.globex}},
	}})
	require.NoError(t, err)
	return &ts
}

func sealer(t testing.TB, tenant string, k seal.Key) *seal.Sealer {
	t.Helper()
	s, err := seal.NewSealer(tenant, k)
	require.NoError(t, err)
	return s
}

func acmeEnv(seq uint64) *transport.Envelope {
	env := transporttest.Envelope(seq)
	env.Tenant = "acme"
	return env
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

// sealedReceiver listens on tcp with an Opener over ts and serves every
// delivery with OK, passing what it delivers to got.
func sealedReceiver(t *testing.T, ts *tenants, log *logBuffer, opts ...seal.OpenerOption) (*nanomsg.Receiver, <-chan transport.Envelope) {
	t.Helper()
	logger := quiet
	if log != nil {
		logger = slog.New(slog.NewTextHandler(log, nil))
	}
	r, err := nanomsg.Listen("tcp://127.0.0.1:0", nanomsg.WithLogger(logger),
		nanomsg.WithOpener(seal.NewOpener(ts.kr, opts...)))
	require.NoError(t, err)
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
	// Registered before any sender's cleanup, so it runs after them; the
	// pause lets in-flight handshakes finish (see closeAfter).
	t.Cleanup(func() { cancel(); <-done; time.Sleep(100 * time.Millisecond); require.NoError(t, r.Close()) })
	return r, got
}

func dialSealed(t *testing.T, addr string, s *seal.Sealer) *nanomsg.Sender {
	t.Helper()
	opts := []nanomsg.Option{nanomsg.WithReconnect(10*time.Millisecond, 100*time.Millisecond)}
	if s != nil {
		opts = append(opts, nanomsg.WithSealer(s))
	}
	snd, err := nanomsg.Dial([]string{addr}, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, snd.Close()) })
	return snd
}

func TestSealedRoundTrip(t *testing.T) {
	noLeak(t)
	ts := newTenants(t)
	r, got := sealedReceiver(t, ts, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for i, k := range []seal.Key{ts.acme1, ts.acme2} { // rotation: both keys valid
		snd := dialSealed(t, r.Addr(), sealer(t, "acme", k))
		env := acmeEnv(uint64(i + 1))
		require.NoError(t, snd.Send(ctx, env))
		g := <-got
		require.Nil(t, g.Sealed)
		require.NotEmpty(t, g.Auth)
		require.Equal(t, env.Seq, g.Seq)
		require.Len(t, g.Measurements, len(env.Measurements))
		for j := range env.Measurements {
			require.Equal(t, env.Measurements[j].Name, g.Measurements[j].Name)
			require.Equal(t, env.Measurements[j].Host, g.Measurements[j].Host)
			require.Equal(t, env.Measurements[j].Value, g.Measurements[j].Value)
		}
		require.Equal(t, acmeEnv(uint64(i + 1)).Measurements[0].Name, env.Measurements[0].Name)
		require.Empty(t, env.Sealed, "Send must not change the caller's envelope")
	}
	require.EqualValues(t, 2, r.Stats().AckedOK)
}

// TestSealedRefusals: each refusal through a Receiver, with its answer,
// its counter and its log line, which names the agent and not the key.
func TestSealedRefusals(t *testing.T) {
	noLeak(t)
	ts := newTenants(t)
	var log logBuffer
	r, got := sealedReceiver(t, ts, &log)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	wrong := ts.acme1
	wrong.Secret = bytes.Repeat([]byte{1}, seal.KeySize)
	other, err := seal.NewKey("k1")
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		sealer *seal.Sealer
		tenant string
		want   error
		stat   func(nanomsg.ReceiverStats) uint64
	}{
		{"unsealed", nil, "acme", transport.ErrRejected, func(s nanomsg.ReceiverStats) uint64 { return s.Unsealed }},
		{"wrong key", sealer(t, "acme", wrong), "acme", transport.ErrRejected, func(s nanomsg.ReceiverStats) uint64 { return s.WrongKey }},
		{"unknown tenant", sealer(t, "initech", other), "initech", transport.ErrRejected, func(s nanomsg.ReceiverStats) uint64 { return s.UnknownTenant }},
		// The header says acme; the key is globex's.
		{"another tenant's key", sealer(t, "acme", ts.globex), "acme", transport.ErrRejected, func(s nanomsg.ReceiverStats) uint64 { return s.WrongKey }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snd := dialSealed(t, r.Addr(), tc.sealer)
			env := acmeEnv(1)
			env.Tenant = tc.tenant
			before := tc.stat(r.Stats())
			require.ErrorIs(t, snd.Send(ctx, env), tc.want)
			require.Equal(t, before+1, tc.stat(r.Stats()))
		})
	}
	require.Empty(t, got)
	out := log.String()
	require.Contains(t, out, "agent=agent-7")
	for _, k := range []seal.Key{ts.acme1, ts.acme2, ts.globex, wrong, other} {
		require.NotContains(t, out, string(k.Secret))
		b, _ := (&seal.KeyFile{Tenants: map[string]*seal.TenantKeys{"t": {Keys: []seal.Key{k}}}}).Marshal()
		i := bytes.Index(b, []byte(`"key": "`))
		require.NotContains(t, out, string(b[i+8:i+8+43]))
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

// TestReplayThroughReceiver: a captured frame replayed after its ack is
// answered OK and not delivered again; one replayed out of the window is
// answered retry; a tampered one is rejected.
func TestReplayThroughReceiver(t *testing.T) {
	noLeak(t)
	ts := newTenants(t)
	r, got := sealedReceiver(t, ts, nil, seal.WithWindow(time.Minute))
	raw := rawReq(t, r.Addr())
	s := sealer(t, "acme", ts.acme1)

	frame := sealFrame(t, s, acmeEnv(5), time.Now())
	require.Equal(t, transport.Ack{Seq: 5}, roundTrip(t, raw, frame))
	require.Len(t, (<-got).Measurements, 6)
	// The same frame again, as an attacker who captured it would send it.
	require.Equal(t, transport.Ack{Seq: 5}, roundTrip(t, raw, frame))
	require.EqualValues(t, 1, r.Stats().Replayed)

	a := roundTrip(t, raw, sealFrame(t, s, acmeEnv(6), time.Now().Add(-2*time.Minute)))
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
	require.Empty(t, got)
}

// TestHostileTraffic: while a good sealed agent sends, raw REQ sockets send
// garbage, truncated, oversized, replayed and tampered frames. Every good
// measurement arrives, and the counters show each kind of refusal.
func TestHostileTraffic(t *testing.T) {
	noLeak(t)
	ts := newTenants(t)
	const maxFrame = 16 << 10
	r, err := nanomsg.Listen("tcp://127.0.0.1:0", nanomsg.WithLogger(quiet), nanomsg.WithMaxFrameSize(maxFrame),
		nanomsg.WithOpener(seal.NewOpener(ts.kr)))
	require.NoError(t, err)
	// A cleanup, not a defer: it runs after the senders' cleanups, then
	// pauses for in-flight handshakes (see closeAfter).
	t.Cleanup(func() { time.Sleep(100 * time.Millisecond); require.NoError(t, r.Close()) })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	var mu sync.Mutex
	seen := map[uint64]int{} // seq of good envelopes -> measurements delivered
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

	good := sealer(t, "acme", ts.acme2)
	snd := dialSealed(t, r.Addr(), good)
	// Connect the good agent before the attack, so the listener's handshake
	// and Close never race (a mangos data race).
	require.NoError(t, snd.Send(ctx, acmeEnv(1)))

	// Captured frames for the replays.
	captured := sealFrame(t, good, acmeEnv(1000), time.Now())
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
			env := acmeEnv(uint64(2000 + i))
			env.Tenant = "globex"
			s, _ := seal.NewSealer("globex", ts.acme1)
			return sealFrame(t, s, env, time.Now())
		}},
	}
	acks := make([][]transport.Ack, len(attackers))
	for i, a := range attackers {
		raw := rawReq(t, r.Addr())
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

	// The good agent sends 100 envelopes of 6 measurements meanwhile.
	for seq := uint64(2); seq <= 101; seq++ {
		require.NoError(t, snd.Send(ctx, acmeEnv(seq)))
	}
	wg.Wait()
	cancel()
	served.Wait()

	for seq := uint64(1); seq <= 101; seq++ {
		require.Equal(t, 6, seen[seq], "seq %d", seq)
	}
	// The captured seq 1000 went in once (its first copy) at most; the
	// others were answered OK without being delivered again.
	require.LessOrEqual(t, seen[1000], 6)
	for i, a := range attackers {
		require.Len(t, acks[i], rounds, a.name)
	}
	st := r.Stats()
	t.Logf("stats: %+v", st)
	require.EqualValues(t, rounds, st.TooLarge, "oversized")
	require.GreaterOrEqual(t, st.Malformed, uint64(2*rounds), "garbage and truncated")
	require.GreaterOrEqual(t, st.Replayed, uint64(rounds-1))
	require.EqualValues(t, rounds, st.Tampered)
	require.EqualValues(t, rounds, st.WrongKey+st.UnknownTenant, "wrong tenant")
	for _, a := range acks[3] {
		require.Equal(t, transport.StatusOK, a.Status, "replays are answered OK")
	}
	for _, i := range []int{0, 1, 2, 4, 5} {
		for _, a := range acks[i] {
			require.Equal(t, transport.StatusRejected, a.Status, attackers[i].name)
			require.False(t, strings.Contains(a.Message, string(ts.acme2.Secret)))
		}
	}
}
