package drivertest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

// feed is a push source fed through a channel, as a test broker would be.
// It counts acknowledgements by outcome.
type feed struct {
	in            chan float64
	ignoreCtx     bool // the broken variant: keeps running after ctx ends
	acked, failed atomic.Int64
}

func (f *feed) Collect(context.Context) ([]meter.Measurement, error) { return nil, nil }

func (f *feed) Push(ctx context.Context, deliver driver.Deliver) error {
	for {
		select {
		case <-ctx.Done():
			if f.ignoreCtx {
				time.Sleep(2 * CancelGrace)
			}
			return nil
		case v := <-f.in:
			deliver(driver.Delivery{Measurements: []meter.Measurement{{Name: "queue.depth", Kind: meter.Gauge, Unit: "message", Value: v}},
				Ack: func(err error) {
					if err != nil {
						f.failed.Add(1)
						return
					}
					f.acked.Add(1)
				}})
		}
	}
}

func (f *feed) trigger(ctx context.Context) error {
	select {
	case f.in <- 1:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestRunPushPassesAGoodSource(t *testing.T) {
	f := &feed{in: make(chan float64, 4)}
	RunPush(t, factory(f), driver.Config{}, f.trigger)
	// Deliver and the second half of Dropped acknowledged with nil, the
	// first half of Dropped with an error; BackPressure's held ack was given
	// in LateAcks with nil.
	require.Equal(t, int64(1), f.failed.Load())
	require.Equal(t, int64(3), f.acked.Load())
}

func TestPushChecksFailBrokenSources(t *testing.T) {
	t.Run("not a Pusher", func(t *testing.T) {
		_, ok := driver.Driver(driver.Func(good)).(driver.Pusher)
		require.False(t, ok)
	})
	t.Run("ignores ctx under back-pressure", func(t *testing.T) {
		f := &feed{in: make(chan float64, 4), ignoreCtx: true}
		r := startPush(f, func([]meter.Measurement, func(error)) (bool, func(error)) { return true, nil })
		require.NoError(t, f.trigger(context.Background()))
		<-r.delivered
		r.cancel()
		require.False(t, r.wait(CancelGrace), "the broken source should still be running")
		require.True(t, r.wait(3*CancelGrace))
	})
	t.Run("trigger fails", func(t *testing.T) {
		f := &feed{in: make(chan float64, 4)}
		r := startPush(f, func([]meter.Measurement, func(error)) (bool, func(error)) { return false, nil })
		stuck, err := r.deliverOnce("test", func(context.Context) error { return context.DeadlineExceeded })
		require.False(t, stuck)
		require.ErrorContains(t, err, "trigger")
		require.True(t, r.wait(CancelGrace), "Push was stopped")
	})
	t.Run("delivers after return", func(t *testing.T) {
		f := &feed{in: make(chan float64, 4)}
		r := startPush(f, func([]meter.Measurement, func(error)) (bool, func(error)) { return false, nil })
		r.cancel()
		require.True(t, r.wait(CancelGrace))
		r.deliver(driver.Delivery{Measurements: []meter.Measurement{{Name: "x"}}}) // as a goroutine left behind would
		require.Equal(t, 1, r.lateCalls())
	})
}

// broker is a message queue's consumer: a message stays unacknowledged
// until its ack says durable, and what is unacknowledged when Push returns
// goes back to the queue, as RabbitMQ redelivers it. The broken variant
// acknowledges upstream as soon as it receives.
type broker struct {
	in       chan string
	ackEarly bool
	sent     atomic.Int64
	mu       sync.Mutex
	unacked  map[string]bool
}

func newBroker(ackEarly bool) *broker {
	return &broker{in: make(chan string, 16), ackEarly: ackEarly, unacked: map[string]bool{}}
}

func (b *broker) Collect(context.Context) ([]meter.Measurement, error) { return nil, nil }

func (b *broker) Push(ctx context.Context, deliver driver.Deliver) error {
	defer func() { // the channel closes: the broker requeues what is unacknowledged
		b.mu.Lock()
		defer b.mu.Unlock()
		for id := range b.unacked {
			b.in <- id
		}
		clear(b.unacked)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-b.in:
			b.mu.Lock()
			if !b.ackEarly {
				b.unacked[id] = true
			}
			b.mu.Unlock()
			deliver(driver.Delivery{Key: id,
				Measurements: []meter.Measurement{{Name: "notification", Kind: meter.Gauge, Unit: "message", Value: 1,
					Labels: []meter.Label{{Key: "message_id", Value: id}}}},
				Ack: func(err error) {
					if err != nil {
						return // left unacknowledged: redelivered once the channel closes
					}
					b.mu.Lock()
					delete(b.unacked, id)
					b.mu.Unlock()
				}})
		}
	}
}

func (b *broker) trigger(ctx context.Context) error {
	select {
	case b.in <- fmt.Sprintf("m-%d", b.sent.Add(1)):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestRunPushRedeliveryPassesAQueue(t *testing.T) {
	b := newBroker(false)
	RunPush(t, factory(b), driver.Config{}, b.trigger, WithRedelivery())
}

func TestRedeliveryFailsASourceThatAcksOnReceipt(t *testing.T) {
	b := newBroker(true)
	stuck, err := redelivery(b, b.trigger, time.Second)
	require.False(t, stuck)
	require.ErrorContains(t, err, "did not come again from the next Push")

	g := newBroker(false)
	stuck, err = redelivery(g, g.trigger, time.Second)
	require.False(t, stuck)
	require.NoError(t, err)
	require.Empty(t, g.in, "the redelivery was acknowledged")
}
