package drivertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/internal/registry"
)

// Timing of the checks. A driver that needs longer than CollectTimeout for
// one collection should be tested with a configuration that makes it faster
// (a fake endpoint, a fixture directory).
const (
	// CollectTimeout is the deadline of the ctx of an ordinary collection.
	CollectTimeout = 10 * time.Second
	// CancelGrace is how long Collect may take to return once its ctx is done.
	CancelGrace = time.Second
	// ShortDeadline is the deadline of the ctx in the deadline check.
	ShortDeadline = 50 * time.Millisecond
	// Repeats is how many collections in a row the repeat check makes.
	Repeats = 5
)

// Host is what Run puts in Measurement.Host when a driver leaves it empty,
// as the agent would, before validating.
const Host = "drivertest.invalid"

// Run checks that the driver made by f from cfg keeps the contract of
// driver.Driver, in subtests of t:
//
//   - Factory: f(cfg) succeeds and returns a non-nil driver.
//   - Collect: one collection succeeds, and every measurement passes
//     meter.Validate once Host and Time are filled in where empty (as the
//     agent does); no two measurements are the same series.
//   - CollectRepeatedly: Repeats collections in a row do the same.
//   - CancelledContext: with a ctx already cancelled, Collect returns within
//     CancelGrace and does not panic.
//   - Deadline: with a ctx whose deadline is ShortDeadline away, Collect
//     returns within ShortDeadline+CancelGrace.
//   - Close: if the driver is an io.Closer, Close returns nil and a second
//     Close does not panic.
//   - NoLeakedGoroutines: every goroutine started since Run began has ended.
//
// cfg must work in the test's environment: Collect returning an error fails
// the Collect checks. Run makes one driver and uses it throughout, never
// calling Collect concurrently. Do not call Run from a parallel test: the
// goroutine check would see the goroutines of other tests.
func Run(t *testing.T, f driver.Factory, cfg driver.Config) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()

	var d driver.Driver
	if !t.Run("Factory", func(t *testing.T) {
		var err error
		if d, err = makeDriver(f, cfg); err != nil {
			t.Fatal(err)
		}
	}) {
		return
	}

	// stuck is set once a Collect may still be running: later checks would
	// call Collect concurrently with it, which the contract forbids.
	var stuck error
	check := func(name string, fn func() (bool, error)) {
		t.Run(name, func(t *testing.T) {
			if stuck != nil {
				t.Skipf("skipped: an earlier Collect never returned: %v", stuck)
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
	check("Collect", func() (bool, error) { return checkCollect(d, 1) })
	check("CollectRepeatedly", func() (bool, error) { return checkCollect(d, Repeats) })
	check("CancelledContext", func() (bool, error) { return checkCancelled(d, CancelGrace) })
	check("Deadline", func() (bool, error) { return checkDeadline(d, ShortDeadline, CancelGrace) })
	if c, ok := d.(io.Closer); ok {
		t.Run("Close", func(t *testing.T) {
			if stuck != nil {
				t.Skipf("skipped: Close must not run while Collect does, and an earlier Collect never returned: %v", stuck)
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

// makeDriver calls the factory, turning a panic or a nil driver into an error.
func makeDriver(f driver.Factory, cfg driver.Config) (driver.Driver, error) {
	return registry.Make("drivertest", "driver", f, cfg)
}

// result is what one Collect call did.
type result struct {
	ms       []meter.Measurement
	err      error
	panicked any
	stack    []byte
	took     time.Duration
}

// collect calls d.Collect(ctx) in a goroutine and waits at most wait for it.
// ok is false if Collect has not returned by then; the goroutine is left
// running (it is the driver's bug, and the goroutine check will show it).
func collect(ctx context.Context, d driver.Driver, wait time.Duration) (r result, ok bool) {
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.panicked, r.stack = p, debug.Stack()
			}
			r.took = time.Since(start)
			done <- r
		}()
		r.ms, r.err = d.Collect(ctx)
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-done:
		return r, true
	case <-timer.C:
		return result{}, false
	}
}

func panicErr(what string, r result) error {
	return fmt.Errorf("drivertest: %s: Collect panicked: %v\n%s", what, r.panicked, r.stack)
}

// checkCollect makes n collections in a row, each with a CollectTimeout
// deadline, and validates what they return. stuck reports a Collect that
// has not returned.
func checkCollect(d driver.Driver, n int) (stuck bool, err error) {
	for i := range n {
		what := "collection " + fmt.Sprint(i+1) + " of " + fmt.Sprint(n)
		ctx, cancel := context.WithTimeout(context.Background(), CollectTimeout)
		r, ok := collect(ctx, d, CollectTimeout+CancelGrace)
		cancel()
		switch {
		case !ok:
			return true, fmt.Errorf("drivertest: %s: Collect had not returned %v after its ctx deadline (%v); return when ctx is done", what, CancelGrace, CollectTimeout)
		case r.panicked != nil:
			return false, panicErr(what, r)
		case r.err != nil:
			return false, fmt.Errorf("drivertest: %s: Collect returned an error (with %d measurements): %w\n"+
				"(partial results with an error are fine in production, but drivertest expects the config given to Run to work here)", what, len(r.ms), r.err)
		}
		if err := validate(r.ms, time.Now()); err != nil {
			return false, fmt.Errorf("drivertest: %s: %w", what, err)
		}
	}
	return false, nil
}

// validate fills Host and Time where empty, as the agent does, and checks
// every measurement and that no series appears twice. It works on a copy.
func validate(ms []meter.Measurement, now time.Time) error {
	var errs []error
	seen := make(map[string]int, len(ms))
	for i, m := range ms {
		if m.Host == "" {
			m.Host = Host
		}
		if m.Time.IsZero() {
			m.Time = now
		}
		if err := m.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("measurement %d (name %q, resource %q): %w", i, m.Name, m.ResourceID, err))
			if len(errs) == 10 {
				errs = append(errs, fmt.Errorf("… (stopped after 10 invalid measurements of %d)", len(ms)))
				break
			}
			continue
		}
		key := seriesKey(&m)
		if j, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("measurements %d and %d are the same series (name %q, resource %q, labels %v) in one collection; "+
				"tell them apart with ResourceID or a label", j, i, m.Name, m.ResourceID, m.Labels))
			continue
		}
		seen[key] = i
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid measurements from Collect (Host and Time were filled in first, as the agent does):\n%w", errors.Join(errs...))
	}
	return nil
}

// seriesKey identifies a series: what stays the same from one collection
// to the next.
func seriesKey(m *meter.Measurement) string {
	labels := make([]string, len(m.Labels))
	for i, l := range m.Labels {
		labels[i] = l.Key + "=" + l.Value
	}
	slices.Sort(labels)
	return strings.Join(append([]string{m.Name, m.Host, m.ResourceID, m.ProjectID, m.UserID}, labels...), "\x00")
}

// checkCancelled calls Collect with a ctx that is already cancelled.
func checkCancelled(d driver.Driver, grace time.Duration) (stuck bool, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, ok := collect(ctx, d, grace)
	switch {
	case !ok:
		return true, fmt.Errorf("drivertest: Collect with an already-cancelled ctx had not returned after %v; "+
			"check ctx.Err() before slow work and select on ctx.Done() while waiting", grace)
	case r.panicked != nil:
		return false, panicErr("cancelled ctx", r)
	}
	if err := validate(r.ms, time.Now()); err != nil {
		return false, fmt.Errorf("drivertest: cancelled ctx: %w", err)
	}
	return false, nil
}

// checkDeadline calls Collect with a ctx whose deadline is near.
func checkDeadline(d driver.Driver, deadline, grace time.Duration) (stuck bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	r, ok := collect(ctx, d, deadline+grace)
	switch {
	case !ok:
		return true, fmt.Errorf("drivertest: Collect with a ctx deadline of %v had not returned after %v; "+
			"pass ctx to every blocking call and return when ctx is done", deadline, deadline+grace)
	case r.panicked != nil:
		return false, panicErr("short deadline", r)
	}
	if err := validate(r.ms, time.Now()); err != nil {
		return false, fmt.Errorf("drivertest: short deadline: %w", err)
	}
	return false, nil
}

// checkClose closes c twice: the first must succeed, the second must not
// panic (it may return an error).
func checkClose(c io.Closer) error {
	if err := closeOnce(c); err != nil {
		return fmt.Errorf("drivertest: Close: %w", err)
	}
	if err := closeOnce(c); err != nil && errors.Is(err, errPanic) {
		return fmt.Errorf("drivertest: second Close: %w; Close must be safe to call more than once", err)
	}
	return nil
}

var errPanic = errors.New("panicked")

func closeOnce(c io.Closer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", errPanic, r, debug.Stack())
		}
	}()
	return c.Close()
}

// checkLeaks reports goroutines that ignore did not know about, after
// letting them settle the way goleak does (retrying for about a second).
func checkLeaks(ignore goleak.Option) error {
	if err := goleak.Find(ignore); err != nil {
		return fmt.Errorf("drivertest: goroutines started during the checks are still running after the last Collect returned"+
			" (and after Close, for an io.Closer); stop every goroutine you start before Collect returns, or in Close:\n%w", err)
	}
	return nil
}
