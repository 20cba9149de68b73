package agent_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/transport"
)

// pushSource delivers its deliveries once, then waits for ctx; each ack's
// error (nil for durable) arrives on acks.
type pushSource struct {
	deliveries [][]meter.Measurement
	acks       chan error
	delivered  chan struct{} // closed once every deliver call returned
	pushes     atomic.Int32
}

func newPushSource(deliveries ...[]meter.Measurement) *pushSource {
	return &pushSource{deliveries: deliveries, acks: make(chan error, len(deliveries)), delivered: make(chan struct{})}
}

func (p *pushSource) Collect(context.Context) ([]meter.Measurement, error) {
	panic("the agent polls a push source")
}

func (p *pushSource) Push(ctx context.Context, deliver driver.Deliver) error {
	if p.pushes.Add(1) == 1 {
		for _, d := range p.deliveries {
			deliver(driver.Delivery{Measurements: d, Ack: func(err error) { p.acks <- err }})
		}
		close(p.delivered)
	}
	<-ctx.Done()
	return nil
}

func gauges(name string, n int) []meter.Measurement {
	ms := make([]meter.Measurement, n)
	for i := range ms {
		ms[i] = gauge(name, float64(i))
	}
	return ms
}

// noAck fails if an ack arrives within d.
func noAck(t *testing.T, p *pushSource, d time.Duration) {
	t.Helper()
	select {
	case err := <-p.acks:
		t.Fatalf("an ack came before the measurements were durable: %v", err)
	case <-time.After(d):
	}
}

func acks(t *testing.T, p *pushSource, n int) []error {
	t.Helper()
	var out []error
	for range n {
		select {
		case err := <-p.acks:
			out = append(out, err)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d acks of %d", len(out), n)
		}
	}
	return out
}

func TestPushAckedOncePublisherAcknowledges(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	var open atomic.Bool
	c := collector{verdict: func(*transport.Envelope) transport.Ack {
		if !open.Load() {
			return transport.Ack{Status: transport.StatusRetry, Message: "store down"}
		}
		return transport.Ack{Status: transport.StatusOK}
	}}
	defer c.run(t, r)()
	// Three deliveries of two measurements in batches of three: the middle
	// one spans two batches.
	p := newPushSource(gauges("a", 2), gauges("b", 2), gauges("c", 2))
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(3, 5*time.Millisecond),
		agent.WithBackoff(time.Millisecond, 5*time.Millisecond), agent.WithDriver("bus", p))
	require.NoError(t, err)
	stop := start(t, a)
	<-p.delivered
	noAck(t, p, 100*time.Millisecond)
	open.Store(true)
	for _, err := range acks(t, p, 3) {
		require.NoError(t, err)
	}
	require.Len(t, c.measurements(), 6, "acked after the publisher had them all")
	require.NoError(t, stop())
	require.Equal(t, int32(1), p.pushes.Load(), "Push runs once while ctx lives")
	require.Zero(t, a.Stats().Collections, "a push source is not polled")
}

func TestPushAckFailsWhenRejectedOrUnsent(t *testing.T) {
	t.Run("rejected", func(t *testing.T) {
		s, r := transport.Pipe()
		defer s.Close()
		c := collector{verdict: func(*transport.Envelope) transport.Ack {
			return transport.Ack{Status: transport.StatusRejected, Message: "no"}
		}}
		defer c.run(t, r)()
		p := newPushSource(gauges("a", 2))
		a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(10, time.Millisecond), agent.WithDriver("bus", p))
		require.NoError(t, err)
		stop := start(t, a)
		errs := acks(t, p, 1)
		require.ErrorIs(t, errs[0], driver.ErrNotDelivered)
		require.ErrorIs(t, errs[0], transport.ErrRejected)
		require.NoError(t, stop())
	})
	t.Run("unsent at stop", func(t *testing.T) {
		s, r := transport.Pipe()
		defer s.Close()
		c := collector{verdict: func(*transport.Envelope) transport.Ack {
			return transport.Ack{Status: transport.StatusRetry, Message: "down"}
		}}
		defer c.run(t, r)()
		p := newPushSource(gauges("a", 2))
		a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(10, time.Millisecond),
			agent.WithBackoff(time.Millisecond, 2*time.Millisecond), agent.WithDrainTimeout(30*time.Millisecond),
			agent.WithDriver("bus", p))
		require.NoError(t, err)
		stop := start(t, a)
		<-p.delivered
		noAck(t, p, 50*time.Millisecond)
		require.Error(t, stop())
		errs := acks(t, p, 1)
		require.ErrorIs(t, errs[0], driver.ErrNotDelivered)
	})
}

func TestPushAckedOnceSpooled(t *testing.T) {
	dir := t.TempDir()
	s, r := transport.Pipe()
	c := collector{verdict: func(*transport.Envelope) transport.Ack {
		return transport.Ack{Status: transport.StatusRetry, Message: "store down"}
	}}
	stopC := c.run(t, r)
	p := newPushSource(gauges("a", 2), gauges("b", 5))
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithID("spooler"), agent.WithBatch(3, 5*time.Millisecond),
		agent.WithSpool(dir), agent.WithBackoff(time.Millisecond, 2*time.Millisecond),
		agent.WithDrainTimeout(20*time.Millisecond), agent.WithDriver("bus", p))
	require.NoError(t, err)
	stop := start(t, a)
	// Durable in the spool though the publisher has none of it.
	for _, err := range acks(t, p, 2) {
		require.NoError(t, err)
	}
	require.Empty(t, c.measurements())
	require.NoError(t, stop())
	stopC()
	s.Close()

	// They are in the spool: a new agent sends them.
	s, r = transport.Pipe()
	defer s.Close()
	var up collector
	defer up.run(t, r)()
	a, err = agent.New(s, agent.WithLogger(quiet), agent.WithID("spooler"), agent.WithSpool(dir))
	require.NoError(t, err)
	stop = start(t, a)
	require.Eventually(t, func() bool { return len(up.measurements()) == 7 }, 5*time.Second, time.Millisecond)
	require.NoError(t, stop())
}

func TestPushBackPressureInsteadOfDropping(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	var open atomic.Bool
	c := collector{verdict: func(*transport.Envelope) transport.Ack {
		if !open.Load() {
			return transport.Ack{Status: transport.StatusRetry, Message: "store down"}
		}
		return transport.Ack{Status: transport.StatusOK}
	}}
	defer c.run(t, r)()
	var ds [][]meter.Measurement
	for range 20 {
		ds = append(ds, gauges("bp", 10))
	}
	p := newPushSource(ds...)
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(10, time.Millisecond), agent.WithQueueBytes(1000),
		agent.WithBackoff(time.Millisecond, 5*time.Millisecond), agent.WithDriver("bus", p))
	require.NoError(t, err)
	stop := start(t, a)
	select {
	case <-p.delivered:
		t.Fatal("every delivery was taken while the queue was full")
	case <-time.After(200 * time.Millisecond):
	}
	open.Store(true)
	<-p.delivered
	for _, err := range acks(t, p, 20) {
		require.NoError(t, err)
	}
	require.NoError(t, stop())
	require.Zero(t, a.Stats().Dropped)
	require.Len(t, c.measurements(), 200)
}

func TestPushWaitsForRoomInTheSpool(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	var open atomic.Bool
	c := collector{verdict: func(*transport.Envelope) transport.Ack {
		if !open.Load() {
			return transport.Ack{Status: transport.StatusRetry, Message: "store down"}
		}
		return transport.Ack{Status: transport.StatusOK}
	}}
	defer c.run(t, r)()
	var ds [][]meter.Measurement
	for range 20 {
		ds = append(ds, gauges("sp", 10))
	}
	p := newPushSource(ds...)
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(10, time.Millisecond),
		agent.WithSpool(t.TempDir(), agent.SpoolMaxBytes(2000)),
		agent.WithBackoff(time.Millisecond, 5*time.Millisecond), agent.WithDriver("bus", p))
	require.NoError(t, err)
	stop := start(t, a)
	select {
	case <-p.delivered:
		t.Fatal("every delivery was taken while the spool was full")
	case <-time.After(200 * time.Millisecond):
	}
	// What was taken is durable: acked while the publisher is down.
	require.NoError(t, acks(t, p, 1)[0])
	open.Store(true)
	<-p.delivered
	for _, err := range acks(t, p, 19) {
		require.NoError(t, err)
	}
	require.NoError(t, stop())
	require.Zero(t, a.Stats().Dropped, "nothing dropped from the spool")
	require.Len(t, c.measurements(), 200)
}

// keyedSource delivers each key once per Push, with one measurement.
type keyedSource struct {
	keys []string
	acks chan error
}

func (k *keyedSource) Collect(context.Context) ([]meter.Measurement, error) { return nil, nil }

func (k *keyedSource) Push(ctx context.Context, deliver driver.Deliver) error {
	for _, key := range k.keys {
		deliver(driver.Delivery{Measurements: []meter.Measurement{gauge("keyed."+key, 1)}, Key: key,
			Ack: func(err error) { k.acks <- err }})
	}
	<-ctx.Done()
	return nil
}

func TestPushKeysInTheSpoolRecogniseRedeliveries(t *testing.T) {
	dir := t.TempDir()
	run := func(keys ...string) (*agent.Agent, []meter.Measurement) {
		s, r := transport.Pipe()
		defer s.Close()
		var c collector
		stopC := c.run(t, r)
		src := &keyedSource{keys: keys, acks: make(chan error, len(keys))}
		a, err := agent.New(s, agent.WithLogger(quiet), agent.WithID("keyed"), agent.WithSpool(dir),
			agent.WithBatch(2, 5*time.Millisecond), agent.WithDriver("bus", src))
		require.NoError(t, err)
		stop := start(t, a)
		for range keys {
			select {
			case err := <-src.acks:
				require.NoError(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("no ack")
			}
		}
		// Let the publisher have what was stored, then stop.
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, stop())
		stopC()
		return a, c.measurements()
	}
	_, ms := run("m1", "m2", "m3")
	require.Len(t, ms, 3)
	// A new agent on the same spool (as after a crash): m2 and m3 come again
	// (their upstream acks were lost), m4 is new.
	a, ms := run("m2", "m3", "m4")
	require.Equal(t, uint64(2), a.Stats().PushDuplicates)
	require.Len(t, ms, 1)
	require.Equal(t, "keyed.m4", ms[0].Name)
}
