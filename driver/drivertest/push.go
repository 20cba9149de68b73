package drivertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

// AckDelay is how long the push checks wait, after a delivery, before they
// acknowledge it: the time a spool takes to commit, simulated. The source
// must not consider anything done before its ack comes.
const AckDelay = 20 * time.Millisecond

// Trigger makes the push source under test receive something (publish a
// message to the test broker, post to its endpoint) while Push runs. It is
// called once per check that needs a delivery.
type Trigger func(ctx context.Context) error

// PushOption adds a check to RunPush.
type PushOption func(*pushOptions)

type pushOptions struct {
	redelivers bool
}

// WithRedelivery adds the Redelivery check, for a source whose upstream
// redelivers what it did not acknowledge (a message queue): a delivery
// whose ack never said durable, because Push's ctx ended first (the agent
// stopped or died), must come again from the next Push, without a new
// trigger. A source that acknowledged upstream on receipt, before the
// agent's ack, fails it.
func WithRedelivery() PushOption { return func(o *pushOptions) { o.redelivers = true } }

// RunPush checks that the driver made by f from cfg keeps the contract of
// driver.Pusher, in subtests of t:
//
//   - Factory: f(cfg) succeeds and returns a driver that is a driver.Pusher.
//   - Deliver: after trigger, Push delivers within CollectTimeout, and each
//     delivery passes the checks of a collection (every measurement valid
//     once Host and Time are filled in, no series twice in it). Each
//     delivery is acknowledged AckDelay later from another goroutine, as a
//     spool commit would be.
//   - Dropped: a delivery acknowledged with an error wrapping
//     driver.ErrNotDelivered does not stop the source: it delivers again
//     after the next trigger.
//   - Redelivery (with WithRedelivery only): a delivery not yet
//     acknowledged when Push's ctx ends, then acknowledged with an error
//     wrapping driver.ErrNotDelivered, is delivered again by the next
//     Push (same Key, or the same measurements when it has none): the
//     source acknowledged upstream only once the ack said durable.
//   - BackPressure: while deliver blocks (the agent has no room), Push
//     returns within CancelGrace once its ctx ends.
//   - LateAcks: acknowledgements that come after Push returned (the spool
//     committed during shutdown) neither panic nor block.
//   - NoDeliverAfterReturn: deliver is never called once Push has returned.
//   - Close: if the driver is an io.Closer, Close returns nil and a second
//     Close does not panic.
//   - NoLeakedGoroutines: every goroutine started since RunPush began has
//     ended.
//
// Like Run, RunPush makes one driver, never runs two Push calls at once, and
// must not be called from a parallel test.
func RunPush(t *testing.T, f driver.Factory, cfg driver.Config, trigger Trigger, opts ...PushOption) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	var o pushOptions
	for _, opt := range opts {
		opt(&o)
	}

	var p driver.Pusher
	var d driver.Driver
	if !t.Run("Factory", func(t *testing.T) {
		var err error
		if d, err = makeDriver(f, cfg); err != nil {
			t.Fatal(err)
		}
		var ok bool
		if p, ok = d.(driver.Pusher); !ok {
			t.Fatalf("drivertest: %T is not a driver.Pusher (Push(ctx, driver.Deliver) error); check a polled driver with Run", d)
		}
	}) {
		return
	}

	var stuck error
	check := func(name string, fn func() (bool, error)) {
		t.Run(name, func(t *testing.T) {
			if stuck != nil {
				t.Skipf("skipped: an earlier Push never returned: %v", stuck)
			}
			s, err := fn()
			if s {
				stuck = err
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	var late []func(error) // acks held back by BackPressure for LateAcks
	var afterReturn *pushRun
	check("Deliver", func() (bool, error) {
		r := startPush(p, func(ms []meter.Measurement, ack func(error)) (bool, func(error)) { return false, nil })
		return r.deliverOnce("Deliver", trigger)
	})
	check("Dropped", func() (bool, error) {
		r := startPush(p, func(ms []meter.Measurement, ack func(error)) (bool, func(error)) {
			return false, func(error) {
				if ack != nil {
					ack(fmt.Errorf("drivertest: simulated spool failure: %w", driver.ErrNotDelivered))
				}
			}
		})
		s, err := r.deliverOnce("Dropped (first delivery, acknowledged with an error)", trigger)
		if err != nil || s {
			return s, err
		}
		r = startPush(p, func(ms []meter.Measurement, ack func(error)) (bool, func(error)) { return false, nil })
		return r.deliverOnce("Dropped (the delivery after one acknowledged with an error)", trigger)
	})
	if o.redelivers {
		check("Redelivery", func() (bool, error) { return redelivery(p, trigger, CollectTimeout) })
	}
	check("BackPressure", func() (bool, error) {
		r := startPush(p, func(ms []meter.Measurement, ack func(error)) (bool, func(error)) {
			return true, nil // block in deliver until Push's ctx ends
		})
		if err := triggerNow(trigger); err != nil {
			r.cancel()
			r.wait(CancelGrace)
			return false, err
		}
		select {
		case <-r.delivered:
		case <-r.done:
			return false, r.returned("BackPressure")
		case <-time.After(CollectTimeout):
			r.cancel()
			if !r.wait(CancelGrace) {
				return true, errors.New("drivertest: BackPressure: no delivery within the timeout, and Push had not returned after its ctx ended")
			}
			return false, fmt.Errorf("drivertest: BackPressure: Push delivered nothing within %v of the trigger", CollectTimeout)
		}
		r.cancel()
		if !r.wait(CancelGrace) {
			return true, fmt.Errorf("drivertest: BackPressure: Push had not returned %v after its ctx ended while deliver was blocked; "+
				"deliver returns when the ctx ends: return from Push then", CancelGrace)
		}
		late = r.heldAcks()
		afterReturn = r
		return false, r.err()
	})
	check("LateAcks", func() (bool, error) {
		done := make(chan error, 1)
		go func() {
			defer func() {
				if v := recover(); v != nil {
					done <- fmt.Errorf("drivertest: LateAcks: an acknowledgement after Push returned panicked: %v\n%s", v, debug.Stack())
				}
			}()
			for i, ack := range late {
				if i%2 == 0 {
					ack(nil)
				} else {
					ack(fmt.Errorf("drivertest: agent stopped: %w", driver.ErrNotDelivered))
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			return false, err
		case <-time.After(CancelGrace):
			return true, fmt.Errorf("drivertest: LateAcks: acknowledging %d deliveries after Push returned blocked for %v; ack must return quickly", len(late), CancelGrace)
		}
	})
	t.Run("NoDeliverAfterReturn", func(t *testing.T) {
		if afterReturn == nil {
			t.Skip("skipped: BackPressure did not run to its end")
		}
		time.Sleep(2 * AckDelay)
		if n := afterReturn.lateCalls(); n > 0 {
			t.Fatalf("drivertest: deliver was called %d times after Push returned; stop delivering before returning", n)
		}
	})
	if c, ok := d.(io.Closer); ok {
		t.Run("Close", func(t *testing.T) {
			if stuck != nil {
				t.Skipf("skipped: an earlier Push never returned: %v", stuck)
			}
			if err := checkClose(c); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("NoLeakedGoroutines", func(t *testing.T) {
		if err := checkLeaks(ignore); err != nil {
			t.Fatal(err)
		}
	})
}

// redelivery checks that a delivery whose ack did not say durable before
// Push's ctx ended comes again from the next Push within wait.
func redelivery(p driver.Pusher, trigger Trigger, wait time.Duration) (stuck bool, err error) {
	var mu sync.Mutex
	var held []func(error)
	r := startPush(p, func(ms []meter.Measurement, ack func(error)) (bool, func(error)) {
		if ack != nil {
			mu.Lock()
			held = append(held, ack)
			mu.Unlock()
		}
		return false, func(error) {} // no ack before Push's ctx ends
	})
	stop := func(r *pushRun, what string) (bool, error) {
		r.cancel()
		if !r.wait(CancelGrace) {
			return true, fmt.Errorf("drivertest: Redelivery: %s: Push had not returned %v after its ctx ended", what, CancelGrace)
		}
		r.acks.Wait()
		return false, r.err()
	}
	if err := triggerNow(trigger); err != nil {
		s, _ := stop(r, "first Push")
		return s, fmt.Errorf("drivertest: Redelivery: %w", err)
	}
	select {
	case <-r.delivered:
	case <-r.done:
		return false, r.returned("Redelivery")
	case <-time.After(CollectTimeout):
		s, serr := stop(r, "first Push")
		return s, errors.Join(fmt.Errorf("drivertest: Redelivery: Push delivered nothing within %v of the trigger", CollectTimeout), serr)
	}
	if s, err := stop(r, "first Push"); s || err != nil {
		return s, err
	}
	// The agent stopped before the delivery was durable: it says so.
	mu.Lock()
	for _, ack := range held {
		ack(fmt.Errorf("drivertest: agent stopped: %w", driver.ErrNotDelivered))
	}
	mu.Unlock()
	r.mu.Lock()
	first, firstKey := r.batches[0], r.keys[0]
	r.mu.Unlock()

	// The next Push acknowledges as the agent would; it is stopped only
	// once those acks were given, so that nothing is left to come back.
	var acked atomic.Int64
	again := startPush(p, func(_ []meter.Measurement, ack func(error)) (bool, func(error)) {
		return false, func(error) {
			if ack != nil {
				ack(nil)
			}
			acked.Add(1)
		}
	})
	deadline := time.After(wait)
	for {
		select {
		case <-again.delivered:
		case <-again.done:
			return false, again.returned("Redelivery (the Push after)")
		case <-deadline:
			s, serr := stop(again, "the Push after")
			return s, errors.Join(fmt.Errorf("drivertest: Redelivery: a delivery that was never acknowledged as durable (Push's ctx ended "+
				"first, then its ack said driver.ErrNotDelivered) did not come again from the next Push within %v: acknowledge "+
				"upstream only in the ack callback, once it says nil", wait), serr)
		}
		again.mu.Lock()
		found := false
		for i, ms := range again.batches {
			if firstKey != "" && again.keys[i] == firstKey || firstKey == "" && sameMeasurements(ms, first) {
				found = true
			}
		}
		n := int64(len(again.batches))
		again.mu.Unlock()
		if found {
			for end := time.Now().Add(CancelGrace); acked.Load() < n && time.Now().Before(end); {
				time.Sleep(AckDelay / 4)
			}
			return stop(again, "the Push after")
		}
	}
}

// sameMeasurements reports whether a and b hold the same measurements,
// times aside (a source may stamp a redelivery anew).
func sameMeasurements(a, b []meter.Measurement) bool {
	return slices.EqualFunc(a, b, func(x, y meter.Measurement) bool {
		return x.Name == y.Name && x.ResourceID == y.ResourceID && x.Value == y.Value && slices.Equal(x.Labels, y.Labels)
	})
}

// pushRun is one Push call under test.
type pushRun struct {
	cancel    context.CancelFunc
	ctx       context.Context
	done      chan struct{} // closed when Push returned
	delivered chan struct{} // receives after each delivery (buffered, never blocks)
	// policy decides per delivery: block in deliver until ctx ends, and an
	// ack to call AckDelay later instead of the default ack(nil).
	policy func(ms []meter.Measurement, ack func(error)) (block bool, ackWith func(error))

	mu        sync.Mutex
	batches   [][]meter.Measurement // one per deliver call
	keys      []string              // their Delivery.Key
	held      []func(error)
	late      int
	pushErr   error
	panicked  any
	stack     []byte
	returnedT bool
	acks      sync.WaitGroup
}

func startPush(p driver.Pusher, policy func([]meter.Measurement, func(error)) (bool, func(error))) *pushRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &pushRun{ctx: ctx, cancel: cancel, done: make(chan struct{}), delivered: make(chan struct{}, 1), policy: policy}
	go func() {
		defer close(r.done)
		defer func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if v := recover(); v != nil {
				r.panicked, r.stack = v, debug.Stack()
			}
			r.returnedT = true
		}()
		err := p.Push(ctx, r.deliver)
		r.mu.Lock()
		r.pushErr = err
		r.mu.Unlock()
	}()
	return r
}

func (r *pushRun) deliver(d driver.Delivery) {
	ms, ack := d.Measurements, d.Ack
	r.mu.Lock()
	if r.returnedT {
		r.late++
		r.mu.Unlock()
		return
	}
	r.batches = append(r.batches, slices.Clone(ms))
	r.keys = append(r.keys, d.Key)
	block, ackWith := r.policy(ms, ack)
	if block && ack != nil {
		r.held = append(r.held, ack)
	}
	r.mu.Unlock()
	select {
	case r.delivered <- struct{}{}:
	default:
	}
	if block {
		<-r.ctx.Done()
		return
	}
	if ackWith == nil {
		ackWith = func(error) {
			if ack != nil {
				ack(nil)
			}
		}
	}
	r.acks.Go(func() {
		time.Sleep(AckDelay) // the simulated commit
		ackWith(nil)
	})
}

// deliverOnce triggers, waits for a delivery, validates it, waits for its
// ack to be given, then stops Push.
func (r *pushRun) deliverOnce(what string, trigger Trigger) (stuck bool, err error) {
	stop := func() (bool, error) {
		r.cancel()
		if !r.wait(CancelGrace) {
			return true, fmt.Errorf("drivertest: %s: Push had not returned %v after its ctx ended; return when ctx is done", what, CancelGrace)
		}
		r.acks.Wait()
		return false, r.err()
	}
	if err := triggerNow(trigger); err != nil {
		s, _ := stop()
		return s, fmt.Errorf("drivertest: %s: %w", what, err)
	}
	select {
	case <-r.delivered:
	case <-r.done:
		return false, r.returned(what)
	case <-time.After(CollectTimeout):
		s, serr := stop()
		return s, errors.Join(fmt.Errorf("drivertest: %s: Push delivered nothing within %v of the trigger", what, CollectTimeout), serr)
	}
	r.mu.Lock()
	batches := slices.Clone(r.batches)
	r.mu.Unlock()
	// Each delivery is checked as a collection is; the same series may come
	// in two deliveries (a redelivered message, a value that changed).
	for i, ms := range batches {
		if len(ms) == 0 {
			s, _ := stop()
			return s, fmt.Errorf("drivertest: %s: delivery %d had no measurements; deliver only what there is", what, i+1)
		}
		if err := validate(ms, time.Now()); err != nil {
			s, _ := stop()
			return s, fmt.Errorf("drivertest: %s: delivery %d: %w", what, i+1, err)
		}
	}
	return stop()
}

// returned explains a Push that returned before its ctx ended.
func (r *pushRun) returned(what string) error {
	if err := r.err(); err != nil {
		return fmt.Errorf("drivertest: %s: Push returned before its ctx ended: %w", what, err)
	}
	return fmt.Errorf("drivertest: %s: Push returned nil before its ctx ended; run until ctx is done", what)
}

// err reports a panic or an error other than ctx's from a returned Push.
func (r *pushRun) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.panicked != nil {
		return fmt.Errorf("drivertest: Push panicked: %v\n%s", r.panicked, r.stack)
	}
	if r.pushErr != nil && !errors.Is(r.pushErr, context.Canceled) {
		return fmt.Errorf("drivertest: Push returned an error when its ctx ended: %w", r.pushErr)
	}
	return nil
}

func (r *pushRun) wait(d time.Duration) bool {
	select {
	case <-r.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (r *pushRun) heldAcks() []func(error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

func (r *pushRun) lateCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.late
}

func triggerNow(trigger Trigger) error {
	if trigger == nil {
		return errors.New("drivertest: RunPush needs a Trigger that makes the source receive something")
	}
	ctx, cancel := context.WithTimeout(context.Background(), CollectTimeout)
	defer cancel()
	if err := trigger(ctx); err != nil {
		return fmt.Errorf("trigger: %w", err)
	}
	return nil
}
