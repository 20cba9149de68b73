package stagetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/registry"
	"github.com/meterkit/meter/stage"
)

// Timing of the checks.
const (
	// ProcessTimeout is how long one Process call may take.
	ProcessTimeout = 10 * time.Second
	// CancelGrace is how long Process may take to return once its ctx is done.
	CancelGrace = time.Second
)

// sentinel fills the memory past the length of every slice Run gives a
// stage, to catch a stage that appends to its input.
var sentinel = meter.Label{Key: "stagetest.sentinel", Value: "appended to a slice of the input"}

// Run checks that the stages made by f from cfg keep the contract of
// stage.Stage, on the batches given (on Sample() if none), in subtests of t:
//
//   - Factory: f(cfg) succeeds and returns a non-nil stage, twice.
//   - InputUnmodified: after every batch, the input measurements, their label
//     slices, and the memory past the length of both are as they were.
//   - AppendsToOut: Process keeps what out held and appends after it.
//   - OutputValid: every measurement returned passes meter.Validate.
//   - OutputKept: what Process returned for a batch has not changed after
//     the later batches (no internal buffer returned in place of out, no
//     label slice given out and then changed).
//   - Deterministic: a fresh stage given the same batches returns the same
//     output in the same order.
//   - Stats: if the stage is a StatsReporter, In counts the measurements
//     given and Out those returned.
//   - Wrapped: the capabilities found with stage.As on the stage are found
//     through a wrapper too.
//   - InPlace: if the stage is a stage.InPlacer, a fresh stage's
//     ProcessInPlace returns for each batch what Process returned, leaves
//     the label slices of the batch as they were and counts the same, and
//     stage.Named forwards it.
//   - State: if the stage is a Checkpointer, it is a Restorer, and a fresh
//     stage restored from its state after half the batches returns for the
//     other half, and then from Tick (for a Ticker), what the first stage
//     returns.
//   - RestoreGarbage: if the stage is a Checkpointer, Restore of bytes that
//     are no state (random bytes, its own state cut in half) is an error and
//     leaves the state as it was: the stage then returns for the other half
//     of the batches, and from Tick, what a stage never given them returns.
//   - Tick: if the stage is a Ticker, Tick at TickTime(batches) after the
//     batches keeps what out held and appends valid measurements, which
//     Stats counts in Out; with a ctx already cancelled it returns within
//     CancelGrace.
//   - CancelledContext: with a ctx already cancelled, Process returns within
//     CancelGrace and does not panic.
//   - Close: if the stage is an io.Closer, Close returns nil and a second
//     Close does not panic.
//   - NoLeakedGoroutines: every goroutine started since Run began has ended.
//
// Process is given a context with a [stage.Origin], as the publisher gives
// one: tenant "stagetest", agent "stagetest-agent", and the batch's number
// as sequence (1, 2, …).
func Run(t *testing.T, f stage.Factory, cfg meter.Config, batches ...[]meter.Measurement) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	if len(batches) == 0 {
		batches = Sample()
	}
	var a, b stage.Stage
	if !t.Run("Factory", func(t *testing.T) {
		var err error
		if a, err = makeStage(f, cfg); err != nil {
			t.Fatal(err)
		}
		if b, err = makeStage(f, cfg); err != nil {
			t.Fatal(fmt.Errorf("second stage: %w", err))
		}
	}) {
		return
	}
	defer closeQuietly(a)
	defer closeQuietly(b)

	outA, err := runBatches(a, batches)
	t.Run("InputUnmodified", func(t *testing.T) { fatal(t, err, errInput) })
	t.Run("AppendsToOut", func(t *testing.T) { fatal(t, err, errOut) })
	t.Run("OutputValid", func(t *testing.T) {
		fatal(t, err, errRun)
		fatal(t, validate(outA), nil)
	})
	t.Run("OutputKept", func(t *testing.T) {
		fatal(t, err, errRun)
		fatal(t, checkKept(outA), nil)
	})
	t.Run("Deterministic", func(t *testing.T) {
		fatal(t, err, errRun)
		outB, err := runBatches(b, batches)
		fatal(t, err, nil)
		fatal(t, sameOutput("a fresh stage given the same batches", outA, outB), nil)
	})
	t.Run("Stats", func(t *testing.T) {
		fatal(t, err, errRun)
		fatal(t, checkStats(a, batches, outA), nil)
	})
	t.Run("Wrapped", func(t *testing.T) { fatal(t, checkWrapped(a), nil) })
	if _, ok := a.(stage.InPlacer); ok {
		t.Run("InPlace", func(t *testing.T) {
			fatal(t, err, errRun)
			fatal(t, checkInPlace(f, cfg, batches, outA), nil)
		})
	}
	if _, ok := stage.As[stage.Checkpointer](a); ok {
		t.Run("State", func(t *testing.T) {
			fatal(t, err, errRun)
			fatal(t, checkState(f, cfg, batches), nil)
		})
		t.Run("RestoreGarbage", func(t *testing.T) {
			fatal(t, err, errRun)
			fatal(t, checkRestoreGarbage(f, cfg, batches), nil)
		})
	}
	if _, ok := stage.As[stage.Ticker](a); ok {
		t.Run("Tick", func(t *testing.T) {
			fatal(t, err, errRun)
			fatal(t, checkTick(f, cfg, batches), nil)
		})
	}
	t.Run("CancelledContext", func(t *testing.T) { fatal(t, checkCancelled(a, batches[0], CancelGrace), nil) })
	if c, ok := stage.As[io.Closer](a); ok {
		t.Run("Close", func(t *testing.T) { fatal(t, checkClose(c), nil) })
		if c, ok := stage.As[io.Closer](b); ok {
			_ = c.Close()
		}
	}
	t.Run("NoLeakedGoroutines", func(t *testing.T) { fatal(t, checkLeaks(ignore), nil) })
}

// checkLeaks reports goroutines that ignore did not know about, after
// letting them settle the way goleak does.
func checkLeaks(ignore goleak.Option) error {
	if err := goleak.Find(ignore); err != nil {
		return fmt.Errorf("stagetest: goroutines started during the checks are still running after the last Process returned"+
			" (and after Close, for an io.Closer); stop every goroutine you start before Process returns, or in Close:\n%w", err)
	}
	return nil
}

// Kinds of failure of runBatches, so that each subtest reports its own.
var (
	errRun   = errors.New("stagetest: Process failed")
	errInput = errors.New("stagetest: the stage modified its input")
	errOut   = errors.New("stagetest: the stage did not append to out")
)

// fatal fails t with err, unless err is of another kind than want (it is
// then another subtest's failure, and t only says it could not check).
func fatal(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		return
	}
	if want == nil || errors.Is(err, want) {
		t.Fatal(err)
	}
	t.Skipf("not checked: %v", err)
}

func closeQuietly(s stage.Stage) {
	if c, ok := stage.As[io.Closer](s); ok {
		_ = closeOnce(c)
	}
}

// makeStage calls the factory, turning a panic or a nil stage into an error.
func makeStage(f stage.Factory, cfg meter.Config) (stage.Stage, error) {
	return registry.Make("stagetest", "stage", f, cfg)
}

// result is what the stage returned for one batch: the slice itself (to see
// later whether it changed) and a deep copy made when it was returned.
type result struct {
	got  []meter.Measurement
	copy []meter.Measurement
}

// prefix is what out holds before each Process call.
var prefix = meter.Measurement{Name: "stagetest.prefix", Kind: meter.Gauge, Value: 1, Time: time.Unix(1, 0).UTC(),
	Labels: []meter.Label{{Key: "stagetest", Value: "prefix"}}}

// runBatches gives the batches to s in order and returns what it made of
// each, without the prefix.
func runBatches(s stage.Stage, batches [][]meter.Measurement) ([]result, error) {
	return runBatchesAt(s, batches, 0)
}

// runBatchesFrom is runBatches on batches[from:], with the origins of their
// positions in batches.
func runBatchesFrom(s stage.Stage, batches [][]meter.Measurement, from int) ([]result, error) {
	return runBatchesAt(s, batches[from:], from)
}

// runBatchesAt runs batches that come first after as many others.
func runBatchesAt(s stage.Stage, batches [][]meter.Measurement, first int) ([]result, error) {
	res := make([]result, 0, len(batches))
	for i, batch := range batches {
		what := "batch " + strconv.Itoa(first+i+1) + " of " + strconv.Itoa(first+len(batches))
		in := guarded(batch)
		before := deepCopy(in)
		out := make([]meter.Measurement, 1, 1+len(batch))
		out[0] = prefix
		ctx, cancel := context.WithTimeout(stage.WithOrigin(context.Background(), origin(first+i)), ProcessTimeout)
		got, p, err := process(ctx, s, in, out)
		cancel()
		switch {
		case p != nil:
			return nil, fmt.Errorf("%w: %s: Process panicked: %v", errRun, what, p)
		case err != nil:
			return nil, fmt.Errorf("%w: %s: Process returned an error: %v\n"+
				"(an error means the stage is broken: a stage drops and counts what it cannot process)", errRun, what, err)
		}
		if err := checkGuarded(in, before); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errInput, what, err)
		}
		if len(got) == 0 || !reflect.DeepEqual(got[0], prefix) {
			return nil, fmt.Errorf("%w: %s: out held one measurement before Process and the result does not start with it; "+
				"append to out and return it (got %d measurements)", errOut, what, len(got))
		}
		got = got[1:]
		res = append(res, result{got: got, copy: deepCopy(got)})
	}
	return res, nil
}

// origin is the origin of batch i (from 0) that Run gives Process.
func origin(i int) stage.Origin {
	return stage.Origin{Tenant: "stagetest", Agent: "stagetest-agent", Seq: uint64(i + 1)}
}

func process(ctx context.Context, s stage.Stage, in, out []meter.Measurement) (got []meter.Measurement, panicked any, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprintf("%v\n%s", r, debug.Stack())
		}
	}()
	got, err = s.Process(ctx, in, out)
	return got, nil, err
}

// guarded copies batch into a new slice whose spare capacity, and the spare
// capacity of every label slice, hold the sentinel.
func guarded(batch []meter.Measurement) []meter.Measurement {
	in := make([]meter.Measurement, len(batch), len(batch)+2)
	copy(in, batch)
	for i := len(batch); i < cap(in); i++ {
		in[:cap(in)][i] = meter.Measurement{Name: sentinel.Key, Labels: []meter.Label{sentinel}}
	}
	for i := range in {
		ls := make([]meter.Label, len(in[i].Labels), len(in[i].Labels)+2)
		copy(ls, in[i].Labels)
		for j := len(ls); j < cap(ls); j++ {
			ls[:cap(ls)][j] = sentinel
		}
		in[i].Labels = ls
	}
	return in
}

// checkGuarded compares in with the copy made before Process, the spare
// capacities included.
func checkGuarded(in, before []meter.Measurement) error {
	for i := range in {
		if !reflect.DeepEqual(in[i], before[i]) {
			return fmt.Errorf("measurement %d of the input changed from %+v to %+v; never modify in or its label slices: append a changed copy to out, with a new label slice", i, before[i], in[i])
		}
		ls := in[i].Labels[:cap(in[i].Labels)]
		for j := len(in[i].Labels); j < len(ls); j++ {
			if ls[j] != sentinel {
				return fmt.Errorf("the stage wrote past the end of the label slice of input measurement %d (%+v): "+
					"append(m.Labels, …) writes into memory the driver may share; copy the labels into a new slice", i, ls[j])
			}
		}
	}
	full := in[:cap(in)]
	for i := len(in); i < len(full); i++ {
		if full[i].Name != sentinel.Key {
			return fmt.Errorf("the stage wrote past the end of in (%+v): append to out, never to in", full[i])
		}
	}
	return nil
}

func deepCopy(ms []meter.Measurement) []meter.Measurement {
	c := make([]meter.Measurement, len(ms))
	copy(c, ms)
	for i := range c {
		if c[i].Labels != nil {
			c[i].Labels = append(make([]meter.Label, 0, len(c[i].Labels)), c[i].Labels...)
		}
	}
	return c
}

func validate(res []result) error {
	var errs []error
	for i, r := range res {
		for j := range r.copy {
			if err := r.copy[j].Validate(); err != nil {
				errs = append(errs, fmt.Errorf("batch %d, output %d (name %q): %w", i+1, j, r.copy[j].Name, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("stagetest: invalid measurements from Process; drop and count what cannot be made valid:\n%w", errors.Join(errs...))
	}
	return nil
}

func checkKept(res []result) error {
	for i, r := range res {
		if err := same(r.copy, r.got); err != nil {
			return fmt.Errorf("stagetest: the output of batch %d changed after later batches: %v; "+
				"append to the out given, and never change a label slice once given out", i+1, err)
		}
	}
	return nil
}

func sameOutput(what string, a, b []result) error {
	for i := range a {
		if err := same(a[i].copy, b[i].copy); err != nil {
			return fmt.Errorf("stagetest: %s, batch %d: %v; the same input and state must give the same output in the same order", what, i+1, err)
		}
	}
	return nil
}

func same(want, got []meter.Measurement) error {
	if len(want) != len(got) {
		return fmt.Errorf("%d measurements, then %d", len(want), len(got))
	}
	for j := range want {
		if !reflect.DeepEqual(want[j], got[j]) {
			return fmt.Errorf("measurement %d was %+v, then %+v", j, want[j], got[j])
		}
	}
	return nil
}

func checkStats(s stage.Stage, batches [][]meter.Measurement, res []result) error {
	r, ok := stage.As[stage.StatsReporter](s)
	if !ok {
		return nil
	}
	var in, out uint64
	for i := range batches {
		in += uint64(len(batches[i]))
		out += uint64(len(res[i].got))
	}
	st := r.Stats()
	if st.In != in || st.Out != out {
		return fmt.Errorf("stagetest: Stats() says in=%d out=%d after Process was given %d measurements and returned %d; "+
			"In counts every measurement given to Process, Out every one appended to out", st.In, st.Out, in, out)
	}
	return nil
}

// unwrapOnly is a wrapper that forwards nothing but Process.
type unwrapOnly struct{ s stage.Stage }

func (u unwrapOnly) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	return u.s.Process(ctx, in, out)
}
func (u unwrapOnly) Unwrap() stage.Stage { return u.s }

func checkWrapped(s stage.Stage) error {
	caps := []struct {
		name string
		find func(stage.Stage) bool
	}{
		{"io.Closer", func(s stage.Stage) bool { _, ok := stage.As[io.Closer](s); return ok }},
		{"stage.Checkpointer", func(s stage.Stage) bool { _, ok := stage.As[stage.Checkpointer](s); return ok }},
		{"stage.Restorer", func(s stage.Stage) bool { _, ok := stage.As[stage.Restorer](s); return ok }},
		{"stage.Ticker", func(s stage.Stage) bool { _, ok := stage.As[stage.Ticker](s); return ok }},
		{"stage.StatsReporter", func(s stage.Stage) bool { _, ok := stage.As[stage.StatsReporter](s); return ok }},
	}
	for _, w := range []stage.Stage{unwrapOnly{s}, stage.Named("stagetest", s), unwrapOnly{unwrapOnly{s}}} {
		for _, c := range caps {
			if c.find(s) && !c.find(w) {
				return fmt.Errorf("stagetest: the stage is a %s, but stage.As does not find it through the wrapper %T; "+
					"a wrapper implements Unwrap() and As walks it", c.name, w)
			}
		}
	}
	return nil
}

func checkState(f stage.Factory, cfg meter.Config, batches [][]meter.Measurement) error {
	a, err := makeStage(f, cfg)
	if err != nil {
		return err
	}
	defer closeQuietly(a)
	cp, _ := stage.As[stage.Checkpointer](a)
	if _, ok := stage.As[stage.Restorer](a); !ok {
		return errors.New("stagetest: the stage is a Checkpointer but not a Restorer: state out needs a way back in")
	}
	half := len(batches) / 2
	if _, err := runBatches(a, batches[:half]); err != nil {
		return err
	}
	state, err := cp.Checkpoint()
	if err != nil {
		return fmt.Errorf("stagetest: Checkpoint: %w", err)
	}
	b, err := makeStage(f, cfg)
	if err != nil {
		return err
	}
	defer closeQuietly(b)
	r, _ := stage.As[stage.Restorer](b)
	if err := r.Restore(state); err != nil {
		return fmt.Errorf("stagetest: Restore of what Checkpoint returned: %w", err)
	}
	return sameFrom(fmt.Sprintf("a fresh stage restored from the state after %d batches", half), a, b, batches, half)
}

// sameFrom runs batches[half:] through a and b, then ticks both at
// TickTime(batches) if they are Tickers, and compares what they returned.
func sameFrom(what string, a, b stage.Stage, batches [][]meter.Measurement, half int) error {
	outA, err := runBatchesFrom(a, batches, half)
	if err != nil {
		return err
	}
	outB, err := runBatchesFrom(b, batches, half)
	if err != nil {
		return err
	}
	if err := sameOutput(what, outA, outB); err != nil {
		return err
	}
	ta, ok := stage.As[stage.Ticker](a)
	if !ok {
		return nil
	}
	tb, _ := stage.As[stage.Ticker](b)
	now := TickTime(batches)
	tickA, err := tick(ta, now)
	if err != nil {
		return err
	}
	tickB, err := tick(tb, now)
	if err != nil {
		return err
	}
	if err := same(tickA, tickB); err != nil {
		return fmt.Errorf("stagetest: %s, Tick at %v after the batches: %v; the same state and time must give the same output in the same order", what, now, err)
	}
	return nil
}

// TickTime is the time at which Run calls Tick after the batches: 30 days
// after the latest of their measurements' times and the time now, late
// enough for any window to close or host to go stale.
func TickTime(batches [][]meter.Measurement) time.Time {
	latest := time.Now()
	for _, b := range batches {
		for _, m := range b {
			if m.Time.After(latest) {
				latest = m.Time
			}
		}
	}
	return latest.Add(30 * 24 * time.Hour).UTC()
}

// tick calls Tick with out holding the prefix, checks that the prefix is
// kept, and returns what Tick appended, copied.
func tick(tk stage.Ticker, now time.Time) (got []meter.Measurement, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: Tick panicked: %v\n%s", errRun, r, debug.Stack())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), ProcessTimeout)
	defer cancel()
	out, err := tk.Tick(ctx, now, []meter.Measurement{prefix})
	if err != nil {
		return nil, fmt.Errorf("%w: Tick returned an error: %v\n(an error means the stage is broken)", errRun, err)
	}
	if len(out) == 0 || !reflect.DeepEqual(out[0], prefix) {
		return nil, fmt.Errorf("%w: Tick: out held one measurement before Tick and the result does not start with it; "+
			"append to out and return it (got %d measurements)", errOut, len(out))
	}
	return deepCopy(out[1:]), nil
}

// garbage is what RestoreGarbage gives Restore, besides the stage's own
// state cut in half.
var garbage = []byte("\x00\xffstagetest: these bytes are no stage's state\xfe")

func checkRestoreGarbage(f stage.Factory, cfg meter.Config, batches [][]meter.Measurement) error {
	a, err := makeStage(f, cfg)
	if err != nil {
		return err
	}
	defer closeQuietly(a)
	b, err := makeStage(f, cfg)
	if err != nil {
		return err
	}
	defer closeQuietly(b)
	half := len(batches) / 2
	if _, err := runBatches(a, batches[:half]); err != nil {
		return err
	}
	if _, err := runBatches(b, batches[:half]); err != nil {
		return err
	}
	cp, _ := stage.As[stage.Checkpointer](b)
	state, err := cp.Checkpoint()
	if err != nil {
		return fmt.Errorf("stagetest: Checkpoint: %w", err)
	}
	r, ok := stage.As[stage.Restorer](b)
	if !ok {
		return errors.New("stagetest: the stage is a Checkpointer but not a Restorer: state out needs a way back in")
	}
	bad := [][]byte{garbage}
	if len(state) > 1 {
		bad = append(bad, state[:len(state)/2])
	}
	for _, g := range bad {
		if err := restore(r, g); err == nil {
			return fmt.Errorf("stagetest: Restore(%q) returned no error; bytes that are no state must be an error", g)
		} else if errors.Is(err, errPanic) {
			return fmt.Errorf("stagetest: Restore(%q): %w; bytes that are no state must be an error", g, err)
		}
	}
	return sameFrom(fmt.Sprintf("a stage given garbage to Restore after %d batches (against one never given it)", half), a, b, batches, half)
}

func restore(r stage.Restorer, b []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v\n%s", errPanic, p, debug.Stack())
		}
	}()
	return r.Restore(b)
}

func checkTick(f stage.Factory, cfg meter.Config, batches [][]meter.Measurement) error {
	s, err := makeStage(f, cfg)
	if err != nil {
		return err
	}
	defer closeQuietly(s)
	res, err := runBatches(s, batches)
	if err != nil {
		return err
	}
	tk, _ := stage.As[stage.Ticker](s)
	now := TickTime(batches)
	got, err := tick(tk, now)
	if err != nil {
		return err
	}
	if err := validate([]result{{copy: got}}); err != nil {
		return fmt.Errorf("stagetest: Tick at %v: %w", now, err)
	}
	if r, ok := stage.As[stage.StatsReporter](s); ok {
		var out uint64
		for _, r := range res {
			out += uint64(len(r.got))
		}
		if st := r.Stats(); st.Out != out+uint64(len(got)) {
			return fmt.Errorf("stagetest: Stats() says out=%d after Process returned %d measurements and Tick %d; "+
				"Out counts every measurement appended to out, by Process and Tick", st.Out, out, len(got))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		_, _ = tk.Tick(ctx, now.Add(time.Hour), nil)
	}()
	timer := time.NewTimer(CancelGrace)
	defer timer.Stop()
	select {
	case p := <-done:
		if p != nil {
			return fmt.Errorf("stagetest: cancelled ctx: Tick panicked: %v", p)
		}
	case <-timer.C:
		return fmt.Errorf("stagetest: Tick with an already-cancelled ctx had not returned after %v; check ctx.Err() before slow work", CancelGrace)
	}
	return nil
}

func checkCancelled(s stage.Stage, batch []meter.Measurement, grace time.Duration) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	type ret struct {
		panicked any
	}
	done := make(chan ret, 1)
	in := deepCopy(batch)
	go func() {
		_, p, _ := process(ctx, s, in, nil)
		done <- ret{p}
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.panicked != nil {
			return fmt.Errorf("stagetest: cancelled ctx: Process panicked: %v", r.panicked)
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("stagetest: Process with an already-cancelled ctx had not returned after %v; check ctx.Err() before slow work", grace)
	}
}

// checkClose closes c twice: the first must succeed, the second must not
// panic (it may return an error).
func checkClose(c io.Closer) error {
	if err := closeOnce(c); err != nil {
		return fmt.Errorf("stagetest: Close: %w", err)
	}
	if err := closeOnce(c); err != nil && errors.Is(err, errPanic) {
		return fmt.Errorf("stagetest: second Close: %w; Close must be safe to call more than once", err)
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
