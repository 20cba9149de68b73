package transporttest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
)

// Bounds of the waits in the suite. A conforming transport answers on a
// loopback well within them.
const (
	waitLong  = 5 * time.Second        // for something that must happen
	waitShort = 150 * time.Millisecond // for ctx deadlines the suite sets
)

// Option changes what Run checks.
type Option func(*options)

type options struct {
	sealing bool
}

// Sealing tells Run that the pair seals what it sends and opens what it
// receives (as the wrappers of package transport/seal do), so that an
// envelope its caller sealed already is not carried as it is: in place of
// RoundTripSealed, Run checks that such an envelope, whose seal is forged,
// is rejected and never reaches Receive.
func Sealing() Option { return func(o *options) { o.sealing = true } }

// Run runs the conformance suite against the pairs newPair makes. newPair is
// called once per subtest and must return a Sender connected to the
// Receiver; it may fail the test t it is given. See the package
// documentation for what is checked.
func Run(t *testing.T, newPair func(t *testing.T) (transport.Sender, transport.Receiver), opts ...Option) {
	t.Helper()
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	ignore := goleak.IgnoreCurrent()
	sealed := struct {
		name string
		fn   func(*testing.T, transport.Sender, transport.Receiver)
	}{"RoundTripSealed", testRoundTripSealed}
	if o.sealing {
		sealed.name, sealed.fn = "ForgedSealRejected", testForgedSealRejected
	}
	tests := []struct {
		name string
		fn   func(*testing.T, transport.Sender, transport.Receiver)
	}{
		{"RoundTrip", testRoundTrip},
		{"RoundTripVersion2", testRoundTripVersion2},
		sealed,
		{"AckStatus", testAckStatus},
		{"Concurrent", testConcurrent},
		{"SendCancel", testSendCancel},
		{"SendDeadline", testSendDeadline},
		{"SendDeadlineUnacked", testSendDeadlineUnacked},
		{"ReceiveContext", testReceiveContext},
		{"AckTwice", testAckTwice},
		{"CloseTwice", testCloseTwice},
		{"UseAfterClose", testUseAfterClose},
		{"CloseUnblocksReceive", testCloseUnblocksReceive},
		{"CloseUnblocksSend", testCloseUnblocksSend},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, r := newPair(t)
			require.NotNil(t, s, "newPair returned a nil Sender")
			require.NotNil(t, r, "newPair returned a nil Receiver")
			defer func() {
				// Receiver first: a Sender waiting for an answer is the
				// transport's business, not a leak of the test's.
				assert.NoError(t, r.Close(), "Receiver.Close")
				assert.NoError(t, s.Close(), "Sender.Close")
			}()
			tc.fn(t, s, r)
		})
	}
	t.Run("NoGoroutineLeak", func(t *testing.T) {
		goleak.VerifyNone(t, ignore)
	})
}

// Establish sends one envelope from s to r and acknowledges it, so that the
// pair's connection is up on both of its ends before a test starts; a
// newPair given to [Run] calls it on its pair before returning it. Pairs of
// transports built on mangos v3 need it: mangos v3.4.2 marks a connection
// open at the end of its handshake without the lock its Close takes, so a
// listener closed while a dialer's handshake is still being read (the
// tests that close a new pair at once) is a data race, which fails a test
// run with -race.
func Establish(t testing.TB, s transport.Sender, r transport.Receiver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		d, err := r.Receive(ctx)
		if err == nil {
			err = d.Ack(transport.Ack{Seq: d.Envelope.Seq, Status: transport.StatusOK})
		}
		got <- err
	}()
	require.NoError(t, s.Send(ctx, Envelope(1)), "transporttest: Establish: Send")
	require.NoError(t, <-got, "transporttest: Establish: Receive")
}

// Envelope returns a new envelope that sets every field: two measurements of
// each kind, with every field set and labels on most. Transports may use it
// in their own tests.
func Envelope(seq uint64) *transport.Envelope {
	zone := time.FixedZone("UTC+2", 2*3600)
	at := time.Date(2026, 11, 21, 10, 30, 15, 123456789, zone)
	env := &transport.Envelope{
		Version: transport.Version,
		Tenant:  "tenant-a",
		Agent:   "agent-7",
		Seq:     seq,
		SentAt:  at.Add(time.Second),
		Host:    "web-1.example.net",
	}
	for i, k := range []meter.Kind{meter.Gauge, meter.Cumulative, meter.Delta, meter.Gauge, meter.Cumulative, meter.Delta} {
		m := meter.Measurement{
			Name:       fmt.Sprintf("test.metric.%d", i),
			Kind:       k,
			Unit:       []string{"%", "B", "s", "B/s", "", "W"}[i],
			Value:      []float64{42.5, 1 << 53, -3.25, 0, 1e-300, 7}[i],
			Time:       at.Add(time.Duration(i) * time.Millisecond),
			Host:       env.Host,
			ResourceID: fmt.Sprintf("resource-%d", i),
			ProjectID:  "project-1",
			UserID:     "user-1",
		}
		if i%2 == 1 {
			m.Host = "other-host" // differs from the envelope's
		}
		if i != 4 {
			m.Labels = []meter.Label{{Key: "device", Value: fmt.Sprintf("sd%c", 'a'+i)}, {Key: "empty", Value: ""}, {Key: "ünïcode", Value: "✓"}}
		}
		env.Measurements = append(env.Measurements, m)
	}
	return env
}

// received is what a background Receive got: a copy of the envelope taken
// before the Ack (the transport may reuse its memory afterwards).
type received struct {
	env transport.Envelope
	err error // of Receive or Ack
}

// serveOne receives one envelope in the background and answers it with ack.
func serveOne(ctx context.Context, r transport.Receiver, ack transport.Ack) <-chan received {
	ch := make(chan received, 1)
	go func() {
		d, err := r.Receive(ctx)
		if err != nil {
			ch <- received{err: fmt.Errorf("receive: %w", err)}
			return
		}
		env := cloneEnvelope(&d.Envelope)
		if err := d.Ack(ack); err != nil {
			ch <- received{env: env, err: fmt.Errorf("ack: %w", err)}
			return
		}
		ch <- received{env: env}
	}()
	return ch
}

func cloneEnvelope(e *transport.Envelope) transport.Envelope {
	c := *e
	c.Measurements = slices.Clone(e.Measurements)
	for i := range c.Measurements {
		c.Measurements[i].Labels = slices.Clone(c.Measurements[i].Labels)
	}
	c.Sealed = slices.Clone(e.Sealed)
	c.Auth = slices.Clone(e.Auth)
	return c
}

func requireSameEnvelope(t *testing.T, want, got *transport.Envelope) {
	t.Helper()
	assert.Equal(t, want.Version, got.Version, "Version")
	assert.Equal(t, want.Tenant, got.Tenant, "Tenant")
	assert.Equal(t, want.Agent, got.Agent, "Agent")
	assert.Equal(t, want.Seq, got.Seq, "Seq")
	assert.True(t, want.SentAt.Equal(got.SentAt), "SentAt: want %v, got %v", want.SentAt, got.SentAt)
	assert.Equal(t, want.Host, got.Host, "Host")
	assert.Equal(t, len(want.Sealed), len(got.Sealed), "len(Sealed)")
	assert.True(t, string(want.Sealed) == string(got.Sealed), "Sealed differs")
	assert.True(t, string(want.Auth) == string(got.Auth), "Auth differs")
	require.Len(t, got.Measurements, len(want.Measurements), "Measurements")
	for i := range want.Measurements {
		w, g := want.Measurements[i], got.Measurements[i]
		assert.True(t, w.Time.Equal(g.Time), "Measurements[%d].Time: want %v, got %v", i, w.Time, g.Time)
		w.Time, g.Time = time.Time{}, time.Time{}
		if len(w.Labels) == 0 && len(g.Labels) == 0 {
			w.Labels, g.Labels = nil, nil
		}
		assert.Equal(t, w, g, "Measurements[%d]", i)
	}
}

func testRoundTrip(t *testing.T, s transport.Sender, r transport.Receiver) {
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	want := Envelope(1)
	got := serveOne(ctx, r, transport.Ack{Status: transport.StatusOK})
	require.NoError(t, s.Send(ctx, want), "Send")
	g := <-got
	require.NoError(t, g.err)
	requireSameEnvelope(t, Envelope(1), &g.env)
	requireSameEnvelope(t, Envelope(1), want) // Send must not change env
}

// testRoundTripVersion2: an envelope of transport.MaxVersion whose
// measurements end with the label meterkit.state (which version 2 may
// carry in its state field) arrives with the same measurements, and a
// Sender that reports its receiver's version (transport.PeerVersioner)
// reports one it can write.
func testRoundTripVersion2(t *testing.T, s transport.Sender, r transport.Receiver) {
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	pv, versioned := transport.As[transport.PeerVersioner](s)
	want := Envelope(7)
	want.Version = transport.MaxVersion
	for i, m := range want.Measurements {
		level := []string{meter.StateOK, meter.StateWarning, meter.StateAlert, meter.StateCritical, meter.StateStale}[i%5]
		want.Measurements[i].Labels = append(slices.Clone(m.Labels), meter.Label{Key: meter.StateLabel, Value: level})
	}
	sent := cloneEnvelope(want)
	got := serveOne(ctx, r, transport.Ack{Status: transport.StatusOK})
	require.NoError(t, s.Send(ctx, want), "Send")
	g := <-got
	require.NoError(t, g.err)
	requireSameEnvelope(t, &sent, &g.env)
	if versioned {
		v := pv.PeerVersion()
		require.True(t, v >= transport.Version && v <= transport.MaxVersion, "PeerVersion after an ack: %d", v)
	}
}

func testRoundTripSealed(t *testing.T, s transport.Sender, r transport.Receiver) {
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	want := Envelope(1<<40 + 3) // a Seq over 32 bits
	want.Measurements = nil
	want.Sealed = []byte("\x00\x01sealed\xffbytes\x00")
	want.Auth = []byte("key-1\x00nonce")
	got := serveOne(ctx, r, transport.Ack{Status: transport.StatusOK})
	require.NoError(t, s.Send(ctx, want), "Send")
	g := <-got
	require.NoError(t, g.err)
	requireSameEnvelope(t, want, &g.env)
}

// testForgedSealRejected: a sealing pair refuses an envelope whose Sealed
// and Auth bytes are not a seal it can open; the receiving side answers it
// itself.
func testForgedSealRejected(t *testing.T, s transport.Sender, r transport.Receiver) {
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	forged := Envelope(1<<40 + 3)
	forged.Measurements = nil
	forged.Sealed = []byte("\x00\x01sealed\xffbytes\x00")
	forged.Auth = []byte("key-1\x00nonce")
	got := serveOne(ctx, r, transport.Ack{Status: transport.StatusOK})
	require.ErrorIs(t, s.Send(ctx, forged), transport.ErrRejected, "Send of an envelope with a forged seal")
	// The next envelope is the first to reach Receive.
	require.NoError(t, s.Send(ctx, Envelope(2)), "Send after the forged one")
	g := <-got
	require.NoError(t, g.err)
	requireSameEnvelope(t, Envelope(2), &g.env)
}

func testAckStatus(t *testing.T, s transport.Sender, r transport.Receiver) {
	for i, tc := range []struct {
		ack  transport.Ack
		want error
	}{
		{transport.Ack{Status: transport.StatusOK}, nil},
		{transport.Ack{Status: transport.StatusRetry, Message: "store down, try later"}, transport.ErrRetry},
		{transport.Ack{Status: transport.StatusRejected, Message: "unknown key \"k1\""}, transport.ErrRejected},
		{transport.Ack{Status: transport.StatusOK, Message: "ok with a note"}, nil},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), waitLong)
		seq := uint64(100 + i)
		got := serveOne(ctx, r, tc.ack)
		err := s.Send(ctx, Envelope(seq))
		require.NoError(t, (<-got).err, "receiving side of %v", tc.ack.Status)
		cancel()
		if tc.want == nil {
			require.NoError(t, err, "Send answered %v", tc.ack.Status)
			continue
		}
		require.ErrorIs(t, err, tc.want, "Send answered %v", tc.ack.Status)
		require.Contains(t, err.Error(), tc.ack.Message, "the error carries the receiver's message")
		other := transport.ErrRejected
		if tc.want == transport.ErrRejected {
			other = transport.ErrRetry
		}
		require.NotErrorIs(t, err, other)
	}
}

// testConcurrent sends from several goroutines while several goroutines
// receive. Each envelope is answered with a status and a message that
// depend on its Seq, so each Send can check it got its own answer.
func testConcurrent(t *testing.T, s transport.Sender, r transport.Receiver) {
	const senders, perSender, receivers = 8, 8, 4
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()

	answer := func(seq uint64) transport.Ack {
		return transport.Ack{Status: transport.Status(seq % 3), Message: fmt.Sprintf("answer-for-%d", seq)}
	}
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var serving sync.WaitGroup
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	recvErrs := make(chan error, receivers)
	for range receivers {
		serving.Go(func() {
			for {
				d, err := r.Receive(serveCtx)
				if err != nil {
					if serveCtx.Err() == nil {
						recvErrs <- err
					}
					return
				}
				mu.Lock()
				seen[d.Envelope.Seq] = true
				mu.Unlock()
				if err := d.Ack(answer(d.Envelope.Seq)); err != nil {
					recvErrs <- fmt.Errorf("ack seq %d: %w", d.Envelope.Seq, err)
					return
				}
			}
		})
	}

	errs := make(chan error, senders*perSender)
	var sending sync.WaitGroup
	for g := range senders {
		sending.Go(func() {
			for i := range perSender {
				seq := uint64(1000 + g*perSender + i)
				env := Envelope(seq)
				env.Agent = fmt.Sprintf("agent-%d", g)
				err := s.Send(ctx, env)
				want := answer(seq)
				switch {
				case want.Status == transport.StatusOK && err != nil:
					errs <- fmt.Errorf("seq %d: want nil, got %w", seq, err)
				case want.Status != transport.StatusOK && (err == nil || !strings.Contains(err.Error(), want.Message)):
					errs <- fmt.Errorf("seq %d: want an error carrying %q, got %v", seq, want.Message, err)
				case want.Status == transport.StatusRetry && !errors.Is(err, transport.ErrRetry),
					want.Status == transport.StatusRejected && !errors.Is(err, transport.ErrRejected):
					errs <- fmt.Errorf("seq %d: want %v, got %w", seq, want.Status, err)
				}
			}
		})
	}
	sending.Wait()
	stopServing()
	serving.Wait()
	close(errs)
	close(recvErrs)
	for err := range recvErrs {
		t.Error("receiving side:", err)
	}
	for err := range errs {
		t.Error(err)
	}
	for g := range senders {
		for i := range perSender {
			require.True(t, seen[uint64(1000+g*perSender+i)], "seq %d never received", 1000+g*perSender+i)
		}
	}
}

// sendWithin runs Send and fails the test if it does not return within waitLong.
func sendWithin(t *testing.T, ctx context.Context, s transport.Sender, env *transport.Envelope) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, env) }()
	select {
	case err := <-done:
		return err
	case <-time.After(waitLong):
		t.Fatalf("Send did not return within %v", waitLong)
		return nil
	}
}

func testSendCancel(t *testing.T, s transport.Sender, _ transport.Receiver) {
	// Nobody calls Receive: no answer ever comes.
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(waitShort, cancel)
	err := sendWithin(t, ctx, s, Envelope(1))
	require.ErrorIs(t, err, context.Canceled, "Send with a cancelled ctx")

	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	err = sendWithin(t, ctx, s, Envelope(2))
	require.ErrorIs(t, err, context.Canceled, "Send with a ctx cancelled before the call")
}

func testSendDeadline(t *testing.T, s transport.Sender, _ transport.Receiver) {
	ctx, cancel := context.WithTimeout(t.Context(), waitShort)
	defer cancel()
	start := time.Now()
	err := sendWithin(t, ctx, s, Envelope(1))
	require.ErrorIs(t, err, context.DeadlineExceeded, "Send past its ctx deadline")
	require.GreaterOrEqual(t, time.Since(start), waitShort*9/10, "Send returned before the deadline")
}

// testSendDeadlineUnacked: the receiver holds the delivery and never acks.
func testSendDeadlineUnacked(t *testing.T, s transport.Sender, r transport.Receiver) {
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	held := make(chan *transport.Delivery, 1)
	go func() {
		d, err := r.Receive(ctx)
		if err == nil {
			held <- d
		}
		close(held)
	}()
	sctx, scancel := context.WithTimeout(ctx, waitShort)
	defer scancel()
	err := sendWithin(t, sctx, s, Envelope(1))
	require.ErrorIs(t, err, context.DeadlineExceeded, "Send past its ctx deadline while the receiver holds the delivery")
	d, ok := <-held
	require.True(t, ok, "the receiver got nothing")
	require.NotNil(t, d)
	_ = d.Ack(transport.Ack{Status: transport.StatusOK}) // the sender is gone: the result does not matter
}

func testReceiveContext(t *testing.T, _ transport.Sender, r transport.Receiver) {
	ctx, cancel := context.WithTimeout(t.Context(), waitShort)
	defer cancel()
	d, err := r.Receive(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "Receive past its ctx deadline")
	require.Nil(t, d)

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(waitShort/3, cancel)
	d, err = r.Receive(ctx)
	require.ErrorIs(t, err, context.Canceled, "Receive with a cancelled ctx")
	require.Nil(t, d)
}

func testAckTwice(t *testing.T, s transport.Sender, r transport.Receiver) {
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	ds := make(chan *transport.Delivery, 1)
	go func() {
		d, _ := r.Receive(ctx)
		ds <- d
	}()
	sent := make(chan error, 1)
	go func() { sent <- s.Send(ctx, Envelope(9)) }()
	d := <-ds
	require.NotNil(t, d, "nothing received")
	require.NoError(t, d.Ack(transport.Ack{Status: transport.StatusOK}))
	require.Error(t, d.Ack(transport.Ack{Status: transport.StatusRejected, Message: "second"}), "a second Ack")
	require.NoError(t, <-sent, "Send gets the first answer")
}

func testCloseTwice(t *testing.T, s transport.Sender, r transport.Receiver) {
	require.NoError(t, s.Close(), "first Sender.Close")
	require.NoError(t, s.Close(), "second Sender.Close")
	require.NoError(t, r.Close(), "first Receiver.Close")
	require.NoError(t, r.Close(), "second Receiver.Close")
}

func testUseAfterClose(t *testing.T, s transport.Sender, r transport.Receiver) {
	require.NoError(t, s.Close())
	require.NoError(t, r.Close())
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	require.ErrorIs(t, sendWithin(t, ctx, s, Envelope(1)), transport.ErrClosed, "Send after Close")
	d, err := r.Receive(ctx)
	require.ErrorIs(t, err, transport.ErrClosed, "Receive after Close")
	require.Nil(t, d)
}

func testCloseUnblocksReceive(t *testing.T, _ transport.Sender, r transport.Receiver) {
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := r.Receive(ctx)
		done <- err
	}()
	time.Sleep(waitShort / 3) // let Receive block
	require.NoError(t, r.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, transport.ErrClosed, "Receive blocked when the Receiver closed")
	case <-ctx.Done():
		t.Fatal("Close did not unblock Receive")
	}
}

func testCloseUnblocksSend(t *testing.T, s transport.Sender, _ transport.Receiver) {
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, Envelope(1)) }() // nobody answers
	time.Sleep(waitShort / 3)                        // let Send block
	require.NoError(t, s.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, transport.ErrClosed, "Send blocked when the Sender closed")
	case <-ctx.Done():
		t.Fatal("Close did not unblock Send")
	}
}
