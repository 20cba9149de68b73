package drivertest

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

func good(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return []meter.Measurement{
		{Name: "demo.value", Kind: meter.Gauge, Unit: "%", Value: 42}, // Host and Time left to the agent
		{Name: "demo.value", Kind: meter.Gauge, Unit: "%", Value: 7, ResourceID: "b"},
	}, nil
}

// closer is a good driver with an idempotent Close.
type closer struct {
	mu     sync.Mutex
	closed bool
}

func (c *closer) Collect(ctx context.Context) ([]meter.Measurement, error) { return good(ctx) }

func (c *closer) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("already closed")
	}
	c.closed = true
	return nil
}

func factory(d driver.Driver) driver.Factory {
	return func(driver.Config) (driver.Driver, error) { return d, nil }
}

func TestRunPassesGoodDrivers(t *testing.T) {
	t.Run("Func", func(t *testing.T) { Run(t, factory(driver.Func(good)), driver.Config{}) })
	t.Run("Closer", func(t *testing.T) { Run(t, factory(&closer{}), driver.Config{}) })
}

func TestMakeDriver(t *testing.T) {
	_, err := makeDriver(nil, driver.Config{})
	require.ErrorContains(t, err, "factory is nil")

	_, err = makeDriver(func(driver.Config) (driver.Driver, error) { return nil, nil }, driver.Config{})
	require.ErrorContains(t, err, "nil driver")

	_, err = makeDriver(func(driver.Config) (driver.Driver, error) { return nil, errors.New("bad port") }, driver.Config{})
	require.ErrorContains(t, err, "bad port")

	_, err = makeDriver(func(driver.Config) (driver.Driver, error) { panic("boom") }, driver.Config{})
	require.ErrorContains(t, err, "panicked: boom")
}

func TestCatchesInvalidMeasurements(t *testing.T) {
	for name, tc := range map[string]struct {
		ms   []meter.Measurement
		want string
	}{
		"NaN":     {[]meter.Measurement{{Name: "x", Kind: meter.Gauge, Value: math.NaN()}}, "Value: NaN"},
		"Inf":     {[]meter.Measurement{{Name: "x", Kind: meter.Gauge, Value: math.Inf(1)}}, "Value: +Inf"},
		"no kind": {[]meter.Measurement{{Name: "x", Value: 1}}, "Kind: unknown kind"},
		"no name": {[]meter.Measurement{{Kind: meter.Gauge}}, "Name: empty"},
		"same series": {[]meter.Measurement{
			{Name: "x", Kind: meter.Gauge, Labels: []meter.Label{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}},
			{Name: "x", Kind: meter.Gauge, Labels: []meter.Label{{Key: "b", Value: "2"}, {Key: "a", Value: "1"}}},
		}, "measurements 0 and 1 are the same series"},
	} {
		t.Run(name, func(t *testing.T) {
			d := driver.Func(func(context.Context) ([]meter.Measurement, error) { return tc.ms, nil })
			stuck, err := checkCollect(d, 1)
			require.False(t, stuck)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestCatchesCollectErrorsAndPanics(t *testing.T) {
	failing := driver.Func(func(context.Context) ([]meter.Measurement, error) {
		return nil, errors.New("demo: dial 10.0.0.1:161: refused")
	})
	_, err := checkCollect(failing, 1)
	require.ErrorContains(t, err, "dial 10.0.0.1:161: refused")

	panicking := driver.Func(func(context.Context) ([]meter.Measurement, error) { panic("index out of range") })
	_, err = checkCollect(panicking, 1)
	require.ErrorContains(t, err, "Collect panicked: index out of range")
	_, err = checkCancelled(panicking, time.Second)
	require.ErrorContains(t, err, "Collect panicked")

	// Only the third collection goes wrong: the repeat check must see it.
	n := 0
	flaky := driver.Func(func(context.Context) ([]meter.Measurement, error) {
		n++
		if n == 3 {
			return []meter.Measurement{{Name: "x", Kind: meter.Gauge, Value: math.NaN()}}, nil
		}
		return []meter.Measurement{{Name: "x", Kind: meter.Gauge}}, nil
	})
	_, err = checkCollect(flaky, Repeats)
	require.ErrorContains(t, err, "collection 3 of 5")
}

func TestCatchesDriverIgnoringContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	release := make(chan struct{})
	returned := make(chan struct{}, 4)
	blocking := driver.Func(func(context.Context) ([]meter.Measurement, error) {
		<-release // ignores ctx
		returned <- struct{}{}
		return nil, nil
	})

	start := time.Now()
	stuck, err := checkCancelled(blocking, 100*time.Millisecond)
	require.True(t, stuck)
	require.ErrorContains(t, err, "already-cancelled ctx had not returned after 100ms")
	require.Less(t, time.Since(start), 2*time.Second, "the check itself must not hang")

	stuck, err = checkDeadline(blocking, 10*time.Millisecond, 100*time.Millisecond)
	require.True(t, stuck)
	require.ErrorContains(t, err, "deadline of 10ms had not returned")

	close(release)
	<-returned
	<-returned
}

func TestCatchesLeakedGoroutine(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	release := make(chan struct{})
	leaky := driver.Func(func(ctx context.Context) ([]meter.Measurement, error) {
		go func() { <-release }() // never stopped by the driver
		return nil, nil
	})
	_, err := checkCollect(leaky, 1)
	require.NoError(t, err)
	err = checkLeaks(ignore)
	close(release)
	require.ErrorContains(t, err, "still running")
	require.NoError(t, goleak.Find(ignore), "the leaked goroutine ends once released")
}

type badCloser struct {
	driver.Func
	calls int
}

func (b *badCloser) Close() error {
	b.calls++
	if b.calls > 1 {
		panic("close of closed channel")
	}
	return nil
}

type failingCloser struct{ driver.Func }

func (failingCloser) Close() error { return errors.New("flush: broken pipe") }

func TestCatchesBadClose(t *testing.T) {
	err := checkClose(&badCloser{Func: good})
	require.ErrorContains(t, err, "second Close: panicked: close of closed channel")

	err = checkClose(failingCloser{good})
	require.ErrorContains(t, err, "Close: flush: broken pipe")

	require.NoError(t, checkClose(&closer{}), "a second Close may return an error")
}

func TestSeriesKey(t *testing.T) {
	a := meter.Measurement{Name: "x", ResourceID: "a"}
	b := meter.Measurement{Name: "x", Labels: []meter.Label{{Key: "ResourceID", Value: "a"}}}
	require.NotEqual(t, seriesKey(&a), seriesKey(&b))
}
