package agent_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// collector acknowledges deliveries with verdict and keeps copies of what it accepted.
type collector struct {
	mu      sync.Mutex
	envs    []transport.Envelope
	verdict func(env *transport.Envelope) transport.Ack
}

func (c *collector) run(t *testing.T, r transport.Receiver) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d, err := r.Receive(ctx)
			if err != nil {
				return
			}
			ack := transport.Ack{Status: transport.StatusOK}
			if c.verdict != nil {
				ack = c.verdict(&d.Envelope)
			}
			if ack.Status == transport.StatusOK {
				e := d.Envelope
				e.Measurements = append([]meter.Measurement(nil), e.Measurements...)
				c.mu.Lock()
				c.envs = append(c.envs, e)
				c.mu.Unlock()
			}
			if err := d.Ack(ack); err != nil {
				t.Errorf("ack: %v", err)
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (c *collector) measurements() []meter.Measurement {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []meter.Measurement
	for _, e := range c.envs {
		out = append(out, e.Measurements...)
	}
	return out
}

func (c *collector) count(name string) int {
	n := 0
	for _, m := range c.measurements() {
		if m.Name == name {
			n++
		}
	}
	return n
}

func gauge(name string, v float64) meter.Measurement {
	return meter.Measurement{Name: name, Kind: meter.Gauge, Value: v}
}

func constant(name string) driver.Driver {
	return driver.Func(func(context.Context) ([]meter.Measurement, error) {
		return []meter.Measurement{gauge(name, 1)}, nil
	})
}

func start(t *testing.T, a *agent.Agent) (cancel func() error) {
	ctx, stop := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	return func() error { stop(); return <-errc }
}

func TestDriversRunOnScheduleAndFillHostAndTime(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	var c collector
	defer c.run(t, r)()

	a, err := agent.New(s, agent.WithHost("h1"), agent.WithID("a1"), agent.WithTenant("t1"), agent.WithLogger(quiet),
		agent.WithBatch(10, 10*time.Millisecond),
		agent.WithDriver("fast", constant("fast"), agent.Interval(20*time.Millisecond)))
	require.NoError(t, err)
	stop := start(t, a)
	require.Eventually(t, func() bool { return c.count("fast") >= 3 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())

	c.mu.Lock()
	env := c.envs[0]
	c.mu.Unlock()
	require.Equal(t, "t1", env.Tenant)
	require.Equal(t, "a1", env.Agent)
	require.Greater(t, env.Seq, uint64(time.Now().Add(-time.Minute).UnixMicro()), "numbering starts from the clock")
	m := env.Measurements[0]
	require.Equal(t, "h1", m.Host)
	require.WithinDuration(t, time.Now(), m.Time, 5*time.Second)
	st := a.Stats()
	require.GreaterOrEqual(t, st.Collections, uint64(3))
	require.Equal(t, st.Added, st.AckedMeasurements, "everything collected was acknowledged after the drain")
}

func TestPanickingDriverDoesNotStopOthers(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	var c collector
	defer c.run(t, r)()
	var calls atomic.Int32
	boom := driver.Func(func(context.Context) ([]meter.Measurement, error) {
		calls.Add(1)
		panic("boom")
	})
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(1, time.Millisecond),
		agent.WithDriver("boom", boom, agent.Interval(10*time.Millisecond)),
		agent.WithDriver("ok", constant("ok"), agent.Interval(10*time.Millisecond)))
	require.NoError(t, err)
	stop := start(t, a)
	require.Eventually(t, func() bool { return c.count("ok") >= 5 && calls.Load() >= 3 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())
	require.GreaterOrEqual(t, a.Stats().Panics, uint64(3), "the panicking driver is called again (restarted) each interval")
}

func TestSlowDriverGetsDeadlineAndDoesNotDelayOthers(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	var c collector
	defer c.run(t, r)()
	var sawDeadline atomic.Bool
	slow := driver.Func(func(ctx context.Context) ([]meter.Measurement, error) {
		if _, ok := ctx.Deadline(); ok {
			sawDeadline.Store(true)
		}
		time.Sleep(150 * time.Millisecond) // ignores ctx: overruns its 20ms timeout
		return []meter.Measurement{gauge("slow", 1)}, ctx.Err()
	})
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(1, time.Millisecond),
		agent.WithDriver("slow", slow, agent.Interval(50*time.Millisecond), agent.Timeout(20*time.Millisecond)),
		agent.WithDriver("fast", constant("fast"), agent.Interval(10*time.Millisecond)))
	require.NoError(t, err)
	stop := start(t, a)
	require.Eventually(t, func() bool { return c.count("slow") >= 1 }, 5*time.Second, 5*time.Millisecond)
	fastDuringOneSlow := c.count("fast")
	require.NoError(t, stop())
	require.True(t, sawDeadline.Load(), "Collect gets a ctx with the timeout as deadline")
	require.GreaterOrEqual(t, fastDuringOneSlow, 5, "the fast driver kept its schedule while the slow one ran")
	st := a.Stats()
	require.GreaterOrEqual(t, st.Overruns, uint64(1))
	require.GreaterOrEqual(t, st.CollectErrors, uint64(1), "partial result with an error is counted")
}

func TestBatchesBySizeAndAge(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	var c collector
	defer c.run(t, r)()
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(1000, 50*time.Millisecond))
	require.NoError(t, err)
	stop := start(t, a)

	ms := make([]meter.Measurement, 2500)
	for i := range ms {
		ms[i] = gauge("m", float64(i))
	}
	require.NoError(t, a.Add(ms...))
	// Two full batches go at once; the remaining 500 only once they are 50ms old.
	require.Eventually(t, func() bool { return len(c.measurements()) == 2500 }, 5*time.Second, time.Millisecond)
	c.mu.Lock()
	sizes := []int{}
	for _, e := range c.envs {
		sizes = append(sizes, len(e.Measurements))
	}
	c.mu.Unlock()
	require.Equal(t, []int{1000, 1000, 500}, sizes)
	for i, m := range c.measurements() {
		require.Equal(t, float64(i), m.Value, "order kept")
	}
	require.NoError(t, stop())
}

func TestDrainOnCancel(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	var c collector
	defer c.run(t, r)()
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(100, time.Hour))
	require.NoError(t, err)
	stop := start(t, a)
	for i := range 250 {
		require.NoError(t, a.Add(gauge("d", float64(i))))
	}
	require.NoError(t, stop(), "the partial batch is flushed and acknowledged on cancel")
	require.Len(t, c.measurements(), 250)
	require.ErrorIs(t, a.Add(gauge("late", 1)), agent.ErrStopped)
	require.ErrorIs(t, a.Run(context.Background()), agent.ErrStopped)
}

func TestResendUntilAccepted(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	var n atomic.Int32
	c := collector{verdict: func(*transport.Envelope) transport.Ack {
		if n.Add(1) <= 2 {
			return transport.Ack{Status: transport.StatusRetry, Message: "store down"}
		}
		return transport.Ack{Status: transport.StatusOK}
	}}
	defer c.run(t, r)()
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(1, time.Millisecond), agent.WithBackoff(time.Millisecond, 5*time.Millisecond))
	require.NoError(t, err)
	stop := start(t, a)
	require.NoError(t, a.Add(gauge("r", 1)))
	require.Eventually(t, func() bool { return len(c.measurements()) == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, stop())
	st := a.Stats()
	require.Equal(t, uint64(2), st.Resent)
	require.Equal(t, uint64(1), st.Acked)
}

func TestRejectedBatchIsDroppedAndCounted(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	c := collector{verdict: func(*transport.Envelope) transport.Ack {
		return transport.Ack{Status: transport.StatusRejected, Message: "bad key"}
	}}
	defer c.run(t, r)()
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(2, time.Millisecond))
	require.NoError(t, err)
	stop := start(t, a)
	require.NoError(t, a.Add(gauge("x", 1), gauge("y", 2)))
	require.Eventually(t, func() bool { return a.Stats().Rejected == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, stop())
	require.Equal(t, uint64(2), a.Stats().RejectedMeasurements)
	require.Zero(t, a.Stats().Resent)
}

func TestUndeliverableIsReportedAfterDrainTimeout(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	c := collector{verdict: func(*transport.Envelope) transport.Ack {
		return transport.Ack{Status: transport.StatusRetry, Message: "down"}
	}}
	defer c.run(t, r)()
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(3, time.Hour),
		agent.WithBackoff(time.Millisecond, 2*time.Millisecond), agent.WithDrainTimeout(50*time.Millisecond))
	require.NoError(t, err)
	stop := start(t, a)
	require.NoError(t, a.Add(gauge("x", 1), gauge("y", 2), gauge("z", 3), gauge("w", 4)))
	err = stop()
	require.ErrorContains(t, err, "4 measurements not acknowledged")
	require.Equal(t, uint64(4), a.Stats().Unsent)
}

func TestQueueFullDropsOldest(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(1, time.Hour), agent.WithQueue(2))
	require.NoError(t, err)
	// Not running: nothing is sent, so the queue overflows.
	for i := range 5 {
		require.NoError(t, a.Add(gauge("q", float64(i))))
	}
	st := a.Stats()
	require.Equal(t, uint64(3), st.Dropped)
	require.Equal(t, 2, st.Queued)

	var c collector
	defer c.run(t, r)()
	stop := start(t, a)
	require.NoError(t, stop())
	ms := c.measurements()
	require.Len(t, ms, 2)
	require.Equal(t, 3.0, ms[0].Value, "the newest batches survive")
	require.Equal(t, 4.0, ms[1].Value)
}

func TestInvalidMeasurementsAreDroppedAndReported(t *testing.T) {
	s, _ := transport.Pipe()
	defer s.Close()
	a, err := agent.New(s, agent.WithLogger(quiet))
	require.NoError(t, err)
	err = a.Add(gauge("ok", 1), gauge("", 2), gauge("nan", math.NaN()))
	require.ErrorIs(t, err, meter.ErrInvalid)
	require.ErrorContains(t, err, "measurement 1")
	require.ErrorContains(t, err, "measurement 2")
	require.Equal(t, uint64(2), a.Stats().Invalid)
}

func TestOptionErrors(t *testing.T) {
	s, _ := transport.Pipe()
	defer s.Close()
	// A negative count or duration is an error naming the option.
	for name, o := range map[string]agent.Option{
		"WithBatch size":    agent.WithBatch(-1, time.Second),
		"WithBatch age":     agent.WithBatch(1, -time.Second),
		"WithQueue":         agent.WithQueue(-1),
		"WithInFlight":      agent.WithInFlight(-2),
		"WithSendTimeout":   agent.WithSendTimeout(-time.Second),
		"WithBackoff min":   agent.WithBackoff(-time.Second, time.Second),
		"WithBackoff max":   agent.WithBackoff(time.Millisecond, -time.Second),
		"WithDrainTimeout":  agent.WithDrainTimeout(-1),
		"WithStatsInterval": agent.WithStatsInterval(-2),
		"Interval":          agent.WithDriver("x", constant("x"), agent.Interval(-time.Second)),
		"Timeout":           agent.WithDriver("x", constant("x"), agent.Timeout(-time.Second)),
	} {
		_, err := agent.New(s, o)
		require.ErrorContains(t, err, name+": negative ", name)
	}
	for _, o := range []agent.Option{
		agent.WithJitter(2), agent.WithBackoff(time.Second, time.Millisecond), agent.WithDriver("", constant("x")),
	} {
		_, err := agent.New(s, o)
		require.Error(t, err)
	}
	_, err := agent.New(s, agent.WithDriver("x", constant("x")), agent.WithDriver("x", constant("x")))
	require.ErrorContains(t, err, "added twice")
	_, err = agent.New(nil)
	require.Error(t, err)
}

// Zero means the package default, for every count and duration: an agent
// made with zeros sends at once on a full default batch and takes a send
// timeout of DefaultSendTimeout, not of zero (which would expire every send).
func TestOptionZeroIsDefault(t *testing.T) {
	s, r := transport.Pipe()
	defer s.Close()
	a, err := agent.New(s, agent.WithLogger(quiet),
		agent.WithBatch(0, 0), agent.WithQueue(0), agent.WithInFlight(0), agent.WithSendTimeout(0),
		agent.WithBackoff(0, 0), agent.WithDrainTimeout(0), agent.WithStatsInterval(agent.NoStats),
		agent.WithDriver("x", constant("x"), agent.Interval(0), agent.Timeout(0)))
	require.NoError(t, err)
	ms := make([]meter.Measurement, agent.DefaultBatchSize)
	for i := range ms {
		ms[i] = gauge("m", float64(i))
	}
	require.NoError(t, a.Add(ms...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	d, err := r.Receive(context.Background())
	require.NoError(t, err)
	require.Len(t, d.Envelope.Measurements, agent.DefaultBatchSize, "a full default batch is sent at once")
	require.NoError(t, d.Ack(transport.Ack{Status: transport.StatusOK}))
	cancel()
	require.NoError(t, <-done)
}

func TestWithNamedDriver(t *testing.T) {
	s, _ := transport.Pipe()
	defer s.Close()
	_, err := agent.New(s, agent.WithNamedDriver("no-such-driver", driver.Config{}))
	require.ErrorContains(t, err, `unknown driver "no-such-driver" (forgotten import?)`)
}

// A driver that ignores cancellation uses up the drain timeout; the senders
// must still be stopped by the same deadline, not wait forever.
func TestRunReturnsWhenDriverAndPublisherBothHang(t *testing.T) {
	s, _ := transport.Pipe() // nobody receives: every Send hangs
	defer s.Close()
	stubborn := driver.Func(func(context.Context) ([]meter.Measurement, error) {
		time.Sleep(300 * time.Millisecond) // ignores ctx
		return []meter.Measurement{gauge("late", 1)}, nil
	})
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithJitter(0), agent.WithDrainTimeout(100*time.Millisecond),
		agent.WithDriver("stubborn", stubborn, agent.Interval(time.Hour)))
	require.NoError(t, err)
	require.NoError(t, a.Add(gauge("queued", 1)))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = a.Run(ctx)
	require.Less(t, time.Since(start), 2*time.Second, "Run must return within its drain timeout")
	require.ErrorContains(t, err, "did not return within the drain timeout")
	require.ErrorContains(t, err, "not acknowledged")
	time.Sleep(400 * time.Millisecond) // let the stubborn driver finish before the leak check
}

// Close during Run stops Run as its context ending would: the agent drains
// what it collected, Run returns, and only then is the sender closed.
func TestCloseDuringRunReturnsRunFirst(t *testing.T) {
	s, r := transport.Pipe()
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(1000, time.Hour))
	require.NoError(t, err)
	require.NoError(t, a.Add(gauge("m", 1), gauge("m", 2)))
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(context.Background()) }()

	// Acknowledge what arrives; the drain sends the partial batch.
	var got int
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			d, err := r.Receive(context.Background())
			if err != nil {
				require.ErrorIs(t, err, transport.ErrClosed, "the receiver ends when Close closes the pipe")
				return
			}
			got += len(d.Envelope.Measurements)
			_ = d.Ack(transport.Ack{Status: transport.StatusOK})
		}
	}()
	time.Sleep(20 * time.Millisecond) // let Run start
	require.NoError(t, a.Close(context.Background()))
	// Close waited for Run: the drain is over when Close returns.
	require.Equal(t, uint64(2), a.Stats().AckedMeasurements, "Run drained everything before Close returned")
	select { // the goroutine reporting Run's return may still be on its way
	case err := <-runDone:
		require.NoError(t, err)
	case <-time.After(time.Second):
		t.Fatal("Close returned before Run did")
	}
	<-recvDone
	require.Equal(t, 2, got)
	require.Equal(t, uint64(2), a.Stats().AckedMeasurements)
	require.NoError(t, a.Close(context.Background()), "Close twice")
	require.ErrorIs(t, a.Add(gauge("late", 1)), agent.ErrStopped)
}

// An agent owns its sender: Close closes it even if Run never ran, and a
// Close whose ctx ends while Run drains into a publisher that never answers
// says so and still closes the sender.
func TestCloseOwnsTheSender(t *testing.T) {
	s, r := transport.Pipe()
	a, err := agent.New(s, agent.WithLogger(quiet))
	require.NoError(t, err)
	require.NoError(t, a.Close(context.Background()))
	_, err = r.Receive(context.Background())
	require.ErrorIs(t, err, transport.ErrClosed)

	s, r = transport.Pipe()
	defer r.Close()
	a, err = agent.New(s, agent.WithLogger(quiet), agent.WithBatch(1, time.Hour), agent.WithDrainTimeout(time.Hour))
	require.NoError(t, err)
	require.NoError(t, a.Add(gauge("m", 1)))
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(context.Background()) }()
	_, err = r.Receive(context.Background()) // taken, never acknowledged
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, a.Close(ctx), context.DeadlineExceeded)
	select {
	case err := <-runDone: // the closed sender ends the drain
		require.Error(t, err, "the unacknowledged measurement is reported")
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close closed its sender")
	}
}
