package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/seal"
)

// frames keeps, for each envelope a receiver accepted, its seq, its frame
// size, its number of measurements and their values and names, copied
// before the ack.
type frames struct {
	mu     sync.Mutex
	seqs   []uint64
	sizes  []int
	counts []int
	values []float64
	names  []string
}

func (f *frames) run(r transport.Receiver) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d, err := r.Receive(ctx)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.seqs = append(f.seqs, d.Envelope.Seq)
			f.sizes = append(f.sizes, d.Size)
			f.counts = append(f.counts, len(d.Envelope.Measurements))
			for _, m := range d.Envelope.Measurements {
				f.values = append(f.values, m.Value)
				f.names = append(f.names, m.Name)
			}
			f.mu.Unlock()
			_ = d.Ack(transport.Ack{Status: transport.StatusOK})
		}
	}()
	return func() { cancel(); <-done }
}

// valuesOf returns the values received of meter name, in order; the
// caller holds f.mu, as for the fields.
func (f *frames) valuesOf(name string) []float64 {
	var vs []float64
	for i, n := range f.names {
		if n == name {
			vs = append(vs, f.values[i])
		}
	}
	return vs
}

func (f *frames) received() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.values)
}

// labelled is a measurement of about size bytes encoded, valued v.
func labelled(name string, v float64, size int) meter.Measurement {
	m := gauge(name, v)
	for i := 0; size > 0; i++ {
		n := min(size, meter.MaxLabelValueLen)
		m.Labels = append(m.Labels, meter.Label{Key: fmt.Sprintf("l%d", i), Value: strings.Repeat("x", n)})
		size -= n
	}
	return m
}

// syncLog is a log buffer safe for the agent's goroutines.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func listenTCP(t *testing.T, addr string, opts ...nanomsg.ListenOption) *nanomsg.Receiver {
	t.Helper()
	r, err := nanomsg.Listen(addr, append([]nanomsg.ListenOption{nanomsg.WithLogger(quiet)}, opts...)...)
	require.NoError(t, err)
	return r
}

func dialTCP(t *testing.T, addr string, opts ...nanomsg.DialOption) *nanomsg.Sender {
	t.Helper()
	s, err := nanomsg.Dial([]string{addr}, append([]nanomsg.DialOption{nanomsg.WithLogger(quiet)}, opts...)...)
	require.NoError(t, err)
	return s
}

// A collection six times the frame limit arrives whole and in order, over
// real mangos sockets, as consecutive batches each within the limit, and
// the batches behind it follow.
func TestCollectionLargerThanAFrameArrivesWholeInOrder(t *testing.T) {
	const limit = 16 << 10
	r := listenTCP(t, "tcp://127.0.0.1:0", nanomsg.WithMaxFrameSize(limit))
	defer r.Close()
	var got frames
	stop := got.run(r)
	defer stop()
	s := dialTCP(t, r.Addr(), nanomsg.WithMaxFrameSize(limit))
	a, err := agent.New(s, agent.WithHost("h"), agent.WithLogger(quiet), agent.WithBatch(100_000, 20*time.Millisecond))
	require.NoError(t, err)
	defer a.Close(context.Background())

	var coll []meter.Measurement
	for i := range 6 * limit / 200 { // about 200 bytes each: 6 frames' worth
		coll = append(coll, labelled("big", float64(i), 180))
	}
	require.NoError(t, a.Add(coll...))
	require.NoError(t, a.Add(gauge("after", 1)))
	cancel := start(t, a)
	require.Eventually(t, func() bool { return got.received() == len(coll)+1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, cancel())

	got.mu.Lock()
	defer got.mu.Unlock()
	require.Len(t, got.values, len(coll)+1)
	for i := range coll {
		require.Equal(t, float64(i), got.values[i], "in collection order")
	}
	require.Equal(t, "after", got.names[len(coll)], "the batch behind it follows")
	require.GreaterOrEqual(t, len(got.seqs), 6, "six frames' worth makes at least six batches")
	for i := 1; i < len(got.seqs); i++ {
		require.Equal(t, got.seqs[i-1]+1, got.seqs[i], "consecutive sequence numbers")
	}
	for _, n := range got.sizes {
		require.LessOrEqual(t, n, limit)
	}
	st := a.Stats()
	require.Zero(t, st.Oversized)
	require.Zero(t, st.Split, "cut before sending, never split")
	require.Zero(t, st.Failed+st.Rejected+st.Dropped)
}

// Only a measurement larger than any frame is dropped: counted, and logged
// with its driver's name; the rest of the collection goes on.
func TestMeasurementTooLargeForAnyFrameIsDropped(t *testing.T) {
	const limit = 4096
	r := listenTCP(t, "tcp://127.0.0.1:0", nanomsg.WithMaxFrameSize(limit))
	defer r.Close()
	var got frames
	stop := got.run(r)
	defer stop()
	var log syncLog
	s := dialTCP(t, r.Addr(), nanomsg.WithMaxFrameSize(limit))
	collected := make(chan struct{}, 1)
	huge := driverFunc(func() []meter.Measurement {
		select {
		case collected <- struct{}{}:
		default:
		}
		return []meter.Measurement{gauge("small", 1), labelled("huge", 2, 2*limit), gauge("small", 3)}
	})
	a, err := agent.New(s, agent.WithHost("h"), agent.WithLogger(slog.New(slog.NewTextHandler(&log, nil))),
		agent.WithDriver("hugedriver", huge, agent.Interval(time.Hour)), agent.WithJitter(0), agent.WithBatch(0, 10*time.Millisecond))
	require.NoError(t, err)
	defer a.Close(context.Background())
	cancel := start(t, a)
	<-collected
	require.Eventually(t, func() bool { return got.received() == 2 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, cancel())
	require.EqualValues(t, 1, a.Stats().Oversized)
	require.Zero(t, a.Stats().Failed+a.Stats().Rejected)
	require.Contains(t, log.String(), "too large for any frame")
	require.Contains(t, log.String(), "driver=hugedriver")
	got.mu.Lock()
	require.Equal(t, []float64{1, 3}, got.values)
	got.mu.Unlock()
}

type driverFunc func() []meter.Measurement

func (f driverFunc) Collect(context.Context) ([]meter.Measurement, error) { return f(), nil }

// A publisher whose frame limit is smaller than the sender's answers the
// batches over it "too large" with its limit: the agent splits them, logs
// both limits once, cuts later batches to the publisher's limit, and
// everything arrives in order.
func TestReceiverWithSmallerLimitGetsSplitBatches(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testSmallerLimit(t) })
	// The spool's stored frames go to the wire as they are, and are decoded
	// to be split.
	t.Run("spool", func(t *testing.T) {
		testSmallerLimit(t, agent.WithSpool(t.TempDir(), agent.SpoolSync(agent.SyncNever)))
	})
}

func testSmallerLimit(t *testing.T, opts ...agent.Option) {
	const sendLimit, recvLimit = 15 << 10, 8 << 10 // within twice the receiver's: mangos keeps the connection
	r := listenTCP(t, "tcp://127.0.0.1:0", nanomsg.WithMaxFrameSize(recvLimit))
	defer r.Close()
	var got frames
	stop := got.run(r)
	defer stop()
	var log syncLog
	s := dialTCP(t, r.Addr(), nanomsg.WithMaxFrameSize(sendLimit))
	a, err := agent.New(s, append([]agent.Option{agent.WithHost("h"), agent.WithLogger(slog.New(slog.NewTextHandler(&log, nil))),
		agent.WithBatch(100_000, 20*time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	defer a.Close(context.Background())

	var coll []meter.Measurement
	for i := range 3 * sendLimit / 200 {
		coll = append(coll, labelled("m", float64(i), 180))
	}
	require.NoError(t, a.Add(coll...))
	cancel := start(t, a)
	require.Eventually(t, func() bool { return got.received() == len(coll) }, 10*time.Second, 10*time.Millisecond, "%v\n%s", a.Stats(), log.String())
	// Batches made from now on are cut to the publisher's limit: not split.
	split := a.Stats().Split
	require.NotZero(t, split)
	require.NoError(t, a.Add(coll...))
	require.Eventually(t, func() bool { return got.received() == 2*len(coll) }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, cancel())
	require.Equal(t, split, a.Stats().Split, "later batches fit the publisher's limit")

	got.mu.Lock()
	for i := range coll {
		require.Equal(t, float64(i), got.values[i], "in collection order")
		require.Equal(t, float64(i), got.values[len(coll)+i], "in collection order")
	}
	for _, n := range got.sizes {
		require.LessOrEqual(t, n, recvLimit)
	}
	got.mu.Unlock()
	st := a.Stats()
	require.Zero(t, st.Oversized+st.Failed+st.Rejected+st.Dropped)
	require.Equal(t, 1, strings.Count(log.String(), "publisher_limit=8192"), "logged once")
	require.Contains(t, log.String(), fmt.Sprintf("sender_limit=%d", sendLimit))
}

func mustSealer(t *testing.T, tenant string) (*seal.Sealer, seal.Key) {
	t.Helper()
	key, err := seal.NewKey("k1")
	require.NoError(t, err)
	sl, err := seal.NewSealer(tenant, key)
	require.NoError(t, err)
	return sl, key
}

// New refuses a tenant that differs from the one the sender seals for:
// every batch would be refused.
func TestTenantMismatchIsRefusedByNew(t *testing.T) {
	sl, _ := mustSealer(t, "acme")
	s, r := transport.Pipe()
	defer r.Close()
	snd := seal.NewSender(s, sl)
	_, err := agent.New(snd, agent.WithTenant("globex"), agent.WithLogger(quiet))
	require.ErrorContains(t, err, `WithTenant("globex"), but the sender seals for tenant "acme"`)
	a, err := agent.New(snd, agent.WithTenant("acme"), agent.WithLogger(quiet))
	require.NoError(t, err)
	require.NoError(t, a.Close(context.Background()))
	s2, r2 := transport.Pipe()
	defer r2.Close()
	a, err = agent.New(seal.NewSender(s2, sl), agent.WithLogger(quiet))
	require.NoError(t, err, "no tenant given: the sealer's is used")
	require.NoError(t, a.Close(context.Background()))
}

// A publisher whose configuration refuses this agent (here: it requires
// sealed envelopes) is not a bad batch: the agent keeps the batches, backs
// off, logs the refusal and reports it, and delivers them all once a
// publisher that accepts it listens in its place.
func TestRefusingReceiverKeepsBatchesQueued(t *testing.T) {
	_, key := mustSealer(t, "acme")
	kr, err := seal.NewKeyring(&seal.KeyFile{Tenants: map[string]*seal.TenantKeys{"acme": {Keys: []seal.Key{key}}}})
	require.NoError(t, err)
	addr := freeTCP(t)
	inner := listenTCP(t, addr)
	op, err := seal.NewOpener(kr)
	require.NoError(t, err)
	strict := seal.NewReceiver(inner, op, seal.WithLogger(quiet))
	var log syncLog
	s := dialTCP(t, addr)
	a, err := agent.New(s, agent.WithHost("h"), agent.WithTenant("acme"), agent.WithLogger(slog.New(slog.NewTextHandler(&log, nil))),
		agent.WithBatch(1, 0), agent.WithBackoff(20*time.Millisecond, 50*time.Millisecond))
	require.NoError(t, err)
	defer a.Close(context.Background())
	ctx, cancelReceive := context.WithCancel(context.Background())
	go func() { // the refusals are answered inside Receive
		_, _ = strict.Receive(ctx)
	}()
	cancel := start(t, a)
	for i := range 3 {
		require.NoError(t, a.Add(gauge("m", float64(i))))
	}
	require.Eventually(t, func() bool { return a.Stats().Refusals >= 2 && a.Stats().Queued == 2 }, 10*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, a.Refused(), transport.ErrRefused)
	st := a.Stats()
	require.Zero(t, st.Rejected+st.Failed+st.Dropped, "nothing dropped")
	require.Contains(t, log.String(), "the publisher refuses this agent")
	cancelReceive()
	require.NoError(t, strict.Close())

	// The publisher is fixed: everything kept arrives, in order.
	var got frames
	var fixed *nanomsg.Receiver
	require.Eventually(t, func() bool {
		fixed, err = nanomsg.Listen(addr, nanomsg.WithLogger(quiet))
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	defer fixed.Close()
	stop := got.run(fixed)
	defer stop()
	require.Eventually(t, func() bool { return got.received() == 3 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, cancel())
	require.NoError(t, a.Refused())
	got.mu.Lock()
	require.Equal(t, []float64{0, 1, 2}, got.values)
	got.mu.Unlock()
}

// poisoning fails, for good, every envelope holding a measurement named
// "poison", and passes the others on.
type poisoning struct{ transport.Sender }

func (p poisoning) Send(ctx context.Context, env *transport.Envelope) error {
	for _, m := range env.Measurements {
		if m.Name == "poison" {
			return transport.Permanent(errors.New("poisoning: this envelope can never be sent"))
		}
	}
	return p.Sender.Send(ctx, env)
}

// A permanent error of the sender drops that batch, counted, and the
// batches behind it go on at once (no backoff behind the poison batch).
func TestPermanentErrorDoesNotBlockTheNextBatch(t *testing.T) {
	r := listenTCP(t, "tcp://127.0.0.1:0")
	defer r.Close()
	var got frames
	stop := got.run(r)
	defer stop()
	a, err := agent.New(poisoning{dialTCP(t, r.Addr())}, agent.WithHost("h"), agent.WithLogger(quiet),
		agent.WithBatch(1, 0), agent.WithBackoff(time.Hour, time.Hour))
	require.NoError(t, err)
	defer a.Close(context.Background())
	require.NoError(t, a.Add(gauge("poison", 1), gauge("good", 2), gauge("good", 3)))
	cancel := start(t, a)
	require.Eventually(t, func() bool { return got.received() == 2 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, cancel())
	st := a.Stats()
	require.EqualValues(t, 1, st.Failed)
	require.EqualValues(t, 1, st.FailedMeasurements)
	require.EqualValues(t, 2, st.AckedMeasurements)
	require.Zero(t, st.Resent)
}

// A publisher whose wire limit (twice its frame limit) is below the
// sender's frame limit drops the connection, without an answer, on a frame
// over it: the sender recognises the frame as too large after the
// connection dropped again and again, and the agent splits the batch until
// the publisher answers, then cuts to its limit. Nothing is lost.
func TestDroppedConnectionOnOversizedFrameSplitsTheBatch(t *testing.T) {
	const sendLimit, recvLimit = 64 << 10, 4 << 10
	r := listenTCP(t, "tcp://127.0.0.1:0", nanomsg.WithMaxFrameSize(recvLimit))
	defer r.Close()
	var got frames
	stop := got.run(r)
	defer stop()
	s := dialTCP(t, r.Addr(), nanomsg.WithMaxFrameSize(sendLimit), nanomsg.WithReconnect(10*time.Millisecond, 50*time.Millisecond))
	a, err := agent.New(s, agent.WithHost("h"), agent.WithLogger(quiet), agent.WithBatch(100_000, 20*time.Millisecond),
		agent.WithSendTimeout(500*time.Millisecond), agent.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	require.NoError(t, err)
	defer a.Close(context.Background())
	var coll []meter.Measurement
	for i := range 40 << 10 / 200 {
		coll = append(coll, labelled("m", float64(i), 180))
	}
	require.NoError(t, a.Add(coll...))
	cancel := start(t, a)
	require.Eventually(t, func() bool { return got.received() == len(coll) }, 20*time.Second, 10*time.Millisecond, "%+v", a.Stats())
	require.NoError(t, cancel())
	st := a.Stats()
	require.NotZero(t, st.Split)
	require.Zero(t, st.Oversized+st.Failed+st.Rejected+st.Dropped)
	got.mu.Lock()
	defer got.mu.Unlock()
	for i := range coll {
		require.Equal(t, float64(i), got.values[i], "in collection order")
	}
}
