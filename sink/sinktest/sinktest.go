package sinktest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// Timing of the checks. A conforming sink answers a store on the loopback
// well within them.
const (
	// WriteTimeout is the deadline of the ctx of an ordinary Write, Flush
	// or Close.
	WriteTimeout = 10 * time.Second
	// CancelGrace is how long Write may take to return once its ctx is
	// done (cancelled, or past its deadline).
	CancelGrace = time.Second
	// StallDeadline is the deadline of the ctx of the Write to a stalled
	// store.
	StallDeadline = 200 * time.Millisecond
)

// Harness says how to make the sink under test and how to look into its
// store. New is required; every other field is optional, and a rule that
// needs a missing one is skipped, saying so.
type Harness struct {
	// New returns a sink writing to an empty store. It is called once per
	// rule; it may fail t, and may register cleanups with it (they run at
	// the end of the rule's subtest). The kit closes the sink.
	New func(t *testing.T) sink.Sink

	// Read returns what the store made by the last call of New holds now,
	// as measurements. The kit calls it after Write returned (and after
	// Flush, for a sink.Flusher), sometimes before Close and sometimes
	// after. Leave it nil for a store that keeps nothing (Discard): the
	// rules that read back are then skipped.
	Read func(t *testing.T) []meter.Measurement

	// Ordered says that Read returns measurements in the order they were
	// written; the kit then compares in order. Otherwise the comparison
	// ignores order (most stores index by series or time, not by arrival).
	Ordered bool

	// Normalize maps a measurement to what the store can give back: for
	// instance it drops the Kind a store does not keep, truncates Time to
	// the store's precision or puts Host in ResourceID where the store
	// falls back to it. The kit applies it to what it wrote and to what
	// Read returns before comparing them. Time is compared as an instant
	// (time.Time.Equal) and labels regardless of their order, so Normalize
	// need not fix time zones or label order.
	Normalize func(meter.Measurement) meter.Measurement

	// Refused is a valid measurement (it passes meter.Validate) that the
	// store refuses for good: a unit it cannot store, a label it forbids.
	// It enables the PartialError and PermanentError rules. The kit
	// writes it, and a copy one millisecond later, among other
	// measurements.
	Refused *meter.Measurement

	// Stall makes the store stop answering (it holds requests without
	// answering them, as an overloaded server does) until the returned
	// func is called. It enables the StalledStore rule. The kit calls the
	// returned func before it closes the sink.
	Stall func(t *testing.T) (release func())

	// ID returns the id the store gave a measurement that Read returned
	// (a message_id the sink put in a label, say), for stores that keep
	// every copy of a measurement written twice. With ID, the NamedWrite
	// rules check that a batch written again under the same name carries
	// the same ids; without it, they check that the store keeps one copy.
	// Normalize must then remove what carries the id (the kit compares
	// what Read returns with what it wrote).
	ID func(meter.Measurement) string
}

// namedWriter is the named write of the sink package (the one the
// publisher uses for a batch it can name); the kit looks for the method, not
// the interface, so that a sink needs nothing else to have it checked.
type namedWriter interface {
	WriteFrom(ctx context.Context, id sink.BatchID, from int, batch []meter.Measurement) error
}

// receipter is the receipt lookup of the sink package, found by its method
// for the same reason.
type receipter interface {
	Stored(ctx context.Context, id sink.BatchID) (int, error)
}

// rule is one check of the suite.
type rule struct {
	name  string
	needs func(h *Harness, s sink.Sink) string // why it is skipped; "" when it runs
	check func(t *testing.T, h *Harness) error
}

func needRead(h *Harness, _ sink.Sink) string {
	if h.Read == nil {
		return "Harness.Read is nil: the store keeps nothing to read back"
	}
	return ""
}

func needRefused(h *Harness, _ sink.Sink) string {
	if h.Refused == nil {
		return "Harness.Refused is nil: no measurement this store refuses"
	}
	return needRead(h, nil)
}

func needStall(h *Harness, _ sink.Sink) string {
	if h.Stall == nil {
		return "Harness.Stall is nil: no way to stall this store"
	}
	return ""
}

func needNamed(h *Harness, s sink.Sink) string {
	if _, ok := s.(namedWriter); !ok {
		return fmt.Sprintf("%T has no WriteFrom method (no named write)", s)
	}
	return needRead(h, nil)
}

func needReceipts(_ *Harness, s sink.Sink) string {
	if _, ok := s.(namedWriter); !ok {
		return fmt.Sprintf("%T has no WriteFrom method (no named write)", s)
	}
	if _, ok := s.(receipter); !ok {
		return fmt.Sprintf("%T has no Stored method (no receipts)", s)
	}
	return ""
}

func needStarter(_ *Harness, s sink.Sink) string {
	if _, ok := s.(sink.Starter); !ok {
		return fmt.Sprintf("%T has no Start method (nothing to start)", s)
	}
	return ""
}

var rules = []rule{
	{"WriteReadBack", needRead, checkReadBack},
	{"BatchNotRetained", needRead, checkNotRetained},
	{"EmptyBatch", nil, checkEmpty},
	{"CancelledContext", nil, checkCancelled},
	{"StalledStore", needStall, checkStalled},
	{"PartialError", needRefused, checkPartial},
	{"PermanentError", needRefused, checkPermanent},
	{"WriteAfterClose", nil, checkWriteAfterClose},
	{"CloseTwice", nil, checkCloseTwice},
	{"NamedWriteTwice", needNamed, checkNamedTwice},
	{"NamedWriteFrom", needNamed, checkNamedFrom},
	{"Receipts", needReceipts, checkReceipts},
	{"Start", needStarter, checkStart},
}

// Run checks that the sinks h.New makes keep the contract of sink.Sink, in
// subtests of t named after the rules (see the package documentation). A
// rule whose Harness hook is missing, or that checks a method the sink does
// not have, is skipped with the reason. Do not call Run from a parallel test:
// the goroutine check would see the goroutines of other tests.
func Run(t *testing.T, h Harness) {
	t.Helper()
	run(t, h, func(t *testing.T, err error) { t.Fatal(err) })
}

// run runs every rule in a subtest of t and hands the errors to fail, so
// that the kit's own tests can see which rules a broken sink breaks.
func run(t *testing.T, h Harness, fail func(t *testing.T, err error)) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	if h.New == nil {
		fail(t, errors.New("sinktest: Harness.New is nil"))
		return
	}
	var kind sink.Sink // one sink, to find out what it implements
	if !t.Run("New", func(t *testing.T) {
		s, err := newSink(t, &h)
		if err != nil {
			fail(t, err)
			return
		}
		kind = s
		if err := closeOnce(s); err != nil {
			fail(t, fmt.Errorf("sinktest: Close of a sink never written to: %w", err))
		}
	}) || kind == nil {
		return
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			if r.needs != nil {
				if why := r.needs(&h, kind); why != "" {
					t.Skip("skipped: " + why)
				}
			}
			if err := r.check(t, &h); err != nil {
				fail(t, err)
			}
		})
	}
	t.Run("NoGoroutineLeak", func(t *testing.T) {
		if err := goleak.Find(ignore); err != nil {
			fail(t, fmt.Errorf("sinktest: goroutines started by the sinks are still running after Close; "+
				"stop every goroutine a sink starts before Write returns, or in Close (idle HTTP connections too):\n%w", err))
		}
	})
}

// newSink calls h.New, turning a panic or a nil sink into an error.
func newSink(t *testing.T, h *Harness) (s sink.Sink, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("sinktest: Harness.New panicked: %v\n%s", r, debug.Stack())
		}
	}()
	if s = h.New(t); s == nil {
		return nil, errors.New("sinktest: Harness.New returned a nil sink")
	}
	return s, nil
}

// --- calling the sink, bounded and guarded ---

// result is what one call of the sink did.
type result struct {
	err      error
	panicked any
	stack    []byte
	took     time.Duration
}

var errStuck = errors.New("did not return")

// call runs fn in a goroutine and waits at most wait for it. A call that
// has not returned by then is left running (the sink's bug: the goroutine
// check shows it) and reported with errStuck.
func call(wait time.Duration, fn func() error) result {
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
		r.err = fn()
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-done:
		return r
	case <-timer.C:
		return result{err: errStuck, took: wait}
	}
}

// plain turns a stuck or panicking call into an error that says what.
func (r result) plain(what string) error {
	switch {
	case r.panicked != nil:
		return fmt.Errorf("sinktest: %s panicked: %v\n%s", what, r.panicked, r.stack)
	case r.err == errStuck:
		return fmt.Errorf("sinktest: %s had not returned after %v", what, r.took)
	}
	return nil
}

// write calls Write with a WriteTimeout deadline and expects nil.
func write(s sink.Sink, batch []meter.Measurement) error {
	ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
	defer cancel()
	r := call(WriteTimeout+CancelGrace, func() error { return s.Write(ctx, batch) })
	if err := r.plain(fmt.Sprintf("Write of %d measurements", len(batch))); err != nil {
		return err
	}
	if r.err != nil {
		return fmt.Errorf("sinktest: Write of %d valid measurements failed: %w", len(batch), r.err)
	}
	return nil
}

// writeFrom calls WriteFrom with a WriteTimeout deadline and expects nil.
func writeFrom(s sink.Sink, id sink.BatchID, from int, batch []meter.Measurement) error {
	ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
	defer cancel()
	nw := s.(namedWriter)
	r := call(WriteTimeout+CancelGrace, func() error { return nw.WriteFrom(ctx, id, from, batch) })
	what := fmt.Sprintf("WriteFrom(batch %s, from %d) of %d measurements", id, from, len(batch))
	if err := r.plain(what); err != nil {
		return err
	}
	if r.err != nil {
		return fmt.Errorf("sinktest: %s failed: %w", what, r.err)
	}
	return nil
}

// flush calls Flush on a sink.Flusher, and does nothing on other sinks.
func flush(s sink.Sink) error {
	f, ok := s.(sink.Flusher)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
	defer cancel()
	r := call(WriteTimeout+CancelGrace, func() error { return f.Flush(ctx) })
	if err := r.plain("Flush"); err != nil {
		return err
	}
	if r.err != nil {
		return fmt.Errorf("sinktest: Flush failed: %w", r.err)
	}
	return nil
}

// closeOnce calls Close with a WriteTimeout deadline.
func closeOnce(s sink.Sink) error {
	ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
	defer cancel()
	r := call(WriteTimeout+CancelGrace, func() error { return s.Close(ctx) })
	if err := r.plain("Close"); err != nil {
		return err
	}
	return r.err
}

// closeAfter closes s at the end of a rule; err, the rule's verdict so far,
// comes first.
func closeAfter(s sink.Sink, err error) error {
	if cerr := closeOnce(s); cerr != nil {
		return errors.Join(err, fmt.Errorf("sinktest: Close: %w", cerr))
	}
	return err
}

// read calls h.Read, guarding against panics.
func read(t *testing.T, h *Harness) (ms []meter.Measurement, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			ms, err = nil, fmt.Errorf("sinktest: Harness.Read panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return h.Read(t), nil
}

// --- the rules ---

// checkReadBack writes two batches and reads both back.
func checkReadBack(t *testing.T, h *Harness) error {
	s, err := newSink(t, h)
	if err != nil {
		return err
	}
	a, b := Batch("a"), Batch("b")
	if err := write(s, a); err != nil {
		return closeAfter(s, err)
	}
	if err := flush(s); err != nil {
		return closeAfter(s, err)
	}
	got, err := read(t, h)
	if err != nil {
		return closeAfter(s, err)
	}
	if err := compare(h, a, got); err != nil {
		return closeAfter(s, fmt.Errorf("sinktest: after one Write: %w", err))
	}
	if err := write(s, b); err != nil {
		return closeAfter(s, err)
	}
	if err := closeOnce(s); err != nil {
		return fmt.Errorf("sinktest: Close: %w", err)
	}
	got, err = read(t, h)
	if err != nil {
		return err
	}
	if err := compare(h, slices.Concat(a, b), got); err != nil {
		return fmt.Errorf("sinktest: after two Writes and Close: %w", err)
	}
	return nil
}

// checkNotRetained overwrites the batch, its labels and the strings'
// backing arrays' slots after Write returned, then flushes, closes and
// reads back: what the store holds must be what was written.
func checkNotRetained(t *testing.T, h *Harness) error {
	s, err := newSink(t, h)
	if err != nil {
		return err
	}
	batch := Batch("a")
	if err := write(s, batch); err != nil {
		return closeAfter(s, err)
	}
	scribble(batch)
	err = flush(s)
	if err := closeAfter(s, err); err != nil {
		return err
	}
	got, err := read(t, h)
	if err != nil {
		return err
	}
	if err := compare(h, Batch("a"), got); err != nil {
		return fmt.Errorf("sinktest: the kit overwrote the batch and its labels after Write returned, "+
			"and the store then held something else: a sink must copy what it keeps past Write: %w", err)
	}
	return nil
}

// scribble overwrites every measurement of batch, and its labels in place,
// with other valid values.
func scribble(batch []meter.Measurement) {
	for i := range batch {
		m := &batch[i]
		for j := range m.Labels {
			m.Labels[j] = meter.Label{Key: "scribbled" + strconv.Itoa(j), Value: "by-sinktest"}
		}
		labels := m.Labels
		*m = meter.Measurement{
			Name: "sinktest.scribbled", Kind: meter.Gauge, Value: -1,
			Time: time.Unix(1, 0), Host: "scribbled", ResourceID: "scribbled", Labels: labels,
		}
	}
}

// checkEmpty writes a nil and an empty batch: both are accepted and store
// nothing.
func checkEmpty(t *testing.T, h *Harness) error {
	s, err := newSink(t, h)
	if err != nil {
		return err
	}
	for _, b := range [][]meter.Measurement{nil, {}} {
		ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
		r := call(WriteTimeout+CancelGrace, func() error { return s.Write(ctx, b) })
		cancel()
		what := "Write of an empty batch"
		if b == nil {
			what = "Write of a nil batch"
		}
		if err := r.plain(what); err != nil {
			return err
		}
		if r.err != nil {
			return closeAfter(s, fmt.Errorf("sinktest: %s returned %w; want nil (there is nothing to refuse)", what, r.err))
		}
	}
	if err := flush(s); err != nil {
		return closeAfter(s, err)
	}
	if err := closeOnce(s); err != nil {
		return fmt.Errorf("sinktest: Close: %w", err)
	}
	if h.Read == nil {
		return nil
	}
	got, err := read(t, h)
	if err != nil {
		return err
	}
	if len(got) > 0 {
		return fmt.Errorf("sinktest: after Writes of empty batches the store holds %d measurement(s), want none:\n%s", len(got), list(got))
	}
	return nil
}

// checkCancelled writes with a ctx already cancelled: Write returns within
// CancelGrace, with nil (it finished anyway) or an error that is not
// permanent (nothing is wrong with the data).
func checkCancelled(t *testing.T, h *Harness) error {
	s, err := newSink(t, h)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	batch := Batch("a")
	r := call(CancelGrace, func() error { return s.Write(ctx, batch) })
	if r.err == errStuck {
		// Closing now would call Close while Write runs, which the
		// contract forbids: leave the sink (the goroutine check reports it).
		return fmt.Errorf("sinktest: Write with an already-cancelled ctx had not returned after %v; "+
			"check ctx.Err() before slow work and pass ctx to every call that waits", CancelGrace)
	}
	if err := r.plain("Write with a cancelled ctx"); err != nil {
		return err
	}
	if sink.IsPermanent(r.err) {
		return closeAfter(s, fmt.Errorf("sinktest: Write with a cancelled ctx returned a permanent error, "+
			"so the publisher would drop good data: return a plain (retryable) error when ctx ends: %w", r.err))
	}
	return closeAfter(s, nil)
}

// checkStalled writes to a stalled store with a ctx deadline StallDeadline
// away: Write returns by then (within CancelGrace) with a retryable error.
func checkStalled(t *testing.T, h *Harness) error {
	s, err := newSink(t, h)
	if err != nil {
		return err
	}
	// One ordinary Write first, so that the stalled one finds the sink
	// connected (a stall of the store, not of a dial).
	if err := write(s, Batch("a")); err != nil {
		return closeAfter(s, err)
	}
	release := h.Stall(t)
	ctx, cancel := context.WithTimeout(context.Background(), StallDeadline)
	defer cancel()
	batch := Batch("b")
	r := call(StallDeadline+CancelGrace, func() error { return s.Write(ctx, batch) })
	if release != nil {
		release()
	}
	if r.err == errStuck {
		return fmt.Errorf("sinktest: Write to a stalled store with a ctx deadline of %v had not returned after %v; "+
			"pass ctx to every call that waits for the store", StallDeadline, StallDeadline+CancelGrace)
	}
	if err := r.plain("Write to a stalled store"); err != nil {
		return err
	}
	switch {
	case r.err == nil:
		return closeAfter(s, fmt.Errorf("sinktest: Write to a stalled store returned nil after %v: "+
			"either the Stall hook did not stall the store, or the sink reports success it did not get", r.took.Round(time.Millisecond)))
	case sink.IsPermanent(r.err):
		return closeAfter(s, fmt.Errorf("sinktest: Write to a stalled store returned a permanent error, "+
			"so the publisher would drop good data: a timeout is retryable: %w", r.err))
	}
	return closeAfter(s, nil)
}

// refusedBatch is Batch("a") with h.Refused at positions 1 and 3 (the
// second a millisecond later).
func refusedBatch(h *Harness) (batch []meter.Measurement, refused []int) {
	a := Batch("a")
	r1, r2 := *h.Refused, *h.Refused
	r1.Labels, r2.Labels = slices.Clone(r1.Labels), slices.Clone(r2.Labels)
	r2.Time = r2.Time.Add(time.Millisecond)
	batch = slices.Concat(a[:1], []meter.Measurement{r1}, a[1:2], []meter.Measurement{r2}, a[2:])
	return batch, []int{1, 3}
}

// checkPartial writes good measurements with refused ones among them: Write
// returns a *sink.PartialError whose Rejected is strictly increasing, in
// range and names exactly the refused ones, and the store holds the rest.
func checkPartial(t *testing.T, h *Harness) error {
	s, err := newSink(t, h)
	if err != nil {
		return err
	}
	batch, refused := refusedBatch(h)
	ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
	defer cancel()
	r := call(WriteTimeout+CancelGrace, func() error { return s.Write(ctx, batch) })
	if err := r.plain("Write"); err != nil {
		return err
	}
	var perr *sink.PartialError
	switch {
	case r.err == nil:
		return closeAfter(s, fmt.Errorf("sinktest: Write of %d measurements, %v of them Harness.Refused, returned nil; "+
			"want a *sink.PartialError naming them", len(batch), refused))
	case !errors.As(r.err, &perr):
		return closeAfter(s, fmt.Errorf("sinktest: Write of %d measurements, %v of them Harness.Refused, returned %w; "+
			"want a *sink.PartialError naming them, so that the others are not retried or dropped with them", len(batch), refused, r.err))
	}
	if err := checkRejected(perr.Rejected, len(batch), refused); err != nil {
		return closeAfter(s, err)
	}
	err = flush(s)
	if err := closeAfter(s, err); err != nil {
		return err
	}
	got, err := read(t, h)
	if err != nil {
		return err
	}
	var rest []meter.Measurement
	for i, m := range batch {
		if !slices.Contains(perr.Rejected, i) {
			rest = append(rest, m)
		}
	}
	if err := compare(h, rest, got); err != nil {
		return fmt.Errorf("sinktest: after a *sink.PartialError rejecting %v, the store must hold the rest and nothing else: %w", perr.Rejected, err)
	}
	return nil
}

// checkRejected checks PartialError.Rejected against a batch of n in which
// refused are the measurements the store refuses.
func checkRejected(rejected []int, n int, refused []int) error {
	for i, x := range rejected {
		if x < 0 || x >= n {
			return fmt.Errorf("sinktest: PartialError.Rejected %v holds %d, out of range for a batch of %d", rejected, x, n)
		}
		if i > 0 && x <= rejected[i-1] {
			return fmt.Errorf("sinktest: PartialError.Rejected %v is not strictly increasing (at position %d)", rejected, i)
		}
	}
	if !slices.Equal(rejected, refused) {
		return fmt.Errorf("sinktest: PartialError.Rejected is %v, want %v (the positions of Harness.Refused): "+
			"name every refused measurement, and only those", rejected, refused)
	}
	return nil
}

// checkPermanent writes only refused measurements: Write fails for good
// (sink.Permanent, or a *sink.PartialError rejecting all of them) and the
// store holds nothing.
func checkPermanent(t *testing.T, h *Harness) error {
	s, err := newSink(t, h)
	if err != nil {
		return err
	}
	all, refused := refusedBatch(h)
	batch := []meter.Measurement{all[refused[0]], all[refused[1]]}
	ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
	defer cancel()
	r := call(WriteTimeout+CancelGrace, func() error { return s.Write(ctx, batch) })
	if err := r.plain("Write"); err != nil {
		return err
	}
	var perr *sink.PartialError
	switch {
	case r.err == nil:
		return closeAfter(s, errors.New("sinktest: Write of two Harness.Refused measurements returned nil; want a permanent error"))
	case errors.As(r.err, &perr):
		if err := checkRejected(perr.Rejected, len(batch), []int{0, 1}); err != nil {
			return closeAfter(s, err)
		}
	case !sink.IsPermanent(r.err):
		return closeAfter(s, fmt.Errorf("sinktest: Write of two Harness.Refused measurements returned a retryable error, "+
			"so the publisher would retry them for ever; wrap it with sink.Permanent: %w", r.err))
	}
	err = flush(s)
	if err := closeAfter(s, err); err != nil {
		return err
	}
	got, err := read(t, h)
	if err != nil {
		return err
	}
	if len(got) > 0 {
		return fmt.Errorf("sinktest: Write failed for good (%v), yet the store holds %d measurement(s); "+
			"a permanent error means nothing was stored:\n%s", r.err, len(got), list(got))
	}
	return nil
}

// checkWriteAfterClose writes after Close: Write fails with an error
// wrapping sink.ErrClosed.
func checkWriteAfterClose(t *testing.T, h *Harness) error {
	s, err := newSink(t, h)
	if err != nil {
		return err
	}
	if err := write(s, Batch("a")); err != nil {
		return closeAfter(s, err)
	}
	if err := closeOnce(s); err != nil {
		return fmt.Errorf("sinktest: Close: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
	defer cancel()
	batch := Batch("b")
	r := call(WriteTimeout+CancelGrace, func() error { return s.Write(ctx, batch) })
	if err := r.plain("Write after Close"); err != nil {
		return err
	}
	switch {
	case r.err == nil:
		return errors.New("sinktest: Write after Close returned nil; want an error wrapping sink.ErrClosed")
	case !errors.Is(r.err, sink.ErrClosed):
		return fmt.Errorf("sinktest: Write after Close returned %q, which does not wrap sink.ErrClosed; "+
			"return fmt.Errorf(\"...: %%w\", sink.ErrClosed)", r.err)
	}
	return nil
}

// checkCloseTwice closes an unused sink and a used one twice each: the
// first Close returns nil, the second nil or the same error, and neither
// panics.
func checkCloseTwice(t *testing.T, h *Harness) error {
	for _, used := range []bool{false, true} {
		what := "a sink never written to"
		if used {
			what = "a sink written to"
		}
		s, err := newSink(t, h)
		if err != nil {
			return err
		}
		if used {
			if err := write(s, Batch("a")); err != nil {
				return closeAfter(s, err)
			}
		}
		if err := closeOnce(s); err != nil {
			return fmt.Errorf("sinktest: first Close of %s: %w", what, err)
		}
		if err := closeOnce(s); err != nil {
			return fmt.Errorf("sinktest: second Close of %s returned %w; Close must be safe to call again (return nil)", what, err)
		}
	}
	return nil
}

// batchID is the name of the batch of the named-write rules.
var batchID = sink.BatchID{Tenant: "sinktest-tenant", Agent: "sinktest-agent", Seq: 42}

// checkNamedTwice writes one batch under one name twice: with h.ID, the
// store gives each measurement an id, and the same ids the second time;
// without it, the store holds one copy.
func checkNamedTwice(t *testing.T, h *Harness) error {
	s, err := newSink(t, h)
	if err != nil {
		return err
	}
	batch := Batch("a")
	if err := writeFrom(s, batchID, 0, batch); err != nil {
		return closeAfter(s, err)
	}
	if err := flush(s); err != nil {
		return closeAfter(s, err)
	}
	first, err := read(t, h)
	if err != nil {
		return closeAfter(s, err)
	}
	if err := compare(h, batch, first); err != nil {
		return closeAfter(s, fmt.Errorf("sinktest: after WriteFrom: %w", err))
	}
	if err := writeFrom(s, batchID, 0, batch); err != nil {
		return closeAfter(s, fmt.Errorf("sinktest: the same batch again: %w", err))
	}
	err = flush(s)
	if err := closeAfter(s, err); err != nil {
		return err
	}
	second, err := read(t, h)
	if err != nil {
		return err
	}
	if h.ID == nil {
		if err := compare(h, batch, second); err != nil {
			return fmt.Errorf("sinktest: the same batch written twice with WriteFrom, under one BatchID, "+
				"must leave one copy in the store (set Harness.ID for a store that keeps copies with the same ids): %w", err)
		}
		return nil
	}
	ids := map[string]bool{}
	for _, m := range first {
		id := h.ID(m)
		switch {
		case id == "":
			return fmt.Errorf("sinktest: Harness.ID found no id in %s", format(m))
		case ids[id]:
			return fmt.Errorf("sinktest: two measurements of one batch have the same id %q", id)
		}
		ids[id] = true
	}
	for _, m := range second {
		if id := h.ID(m); !ids[id] {
			return fmt.Errorf("sinktest: the same batch written again with WriteFrom, under the same BatchID, "+
				"gave %s a new id %q; want the ids of the first write %v, so that the store can drop the repeat",
				format(m), id, slices.Sorted(maps.Keys(ids)))
		}
	}
	if err := compare(h, slices.Concat(batch, batch), second); err != nil {
		return fmt.Errorf("sinktest: after the same batch was written twice: %w", err)
	}
	return nil
}

// checkNamedFrom writes a batch in two parts, the second with from > 0, as
// the publisher does after a receipt said how far the store held it: the
// store then holds the whole batch.
func checkNamedFrom(t *testing.T, h *Harness) error {
	s, err := newSink(t, h)
	if err != nil {
		return err
	}
	batch := Batch("a")
	if err := writeFrom(s, batchID, 0, batch[:2]); err != nil {
		return closeAfter(s, err)
	}
	if err := writeFrom(s, batchID, 2, batch[2:]); err != nil {
		return closeAfter(s, err)
	}
	err = flush(s)
	if err := closeAfter(s, err); err != nil {
		return err
	}
	got, err := read(t, h)
	if err != nil {
		return err
	}
	if err := compare(h, batch, got); err != nil {
		return fmt.Errorf("sinktest: a batch written with WriteFrom in two parts (from 0, then from 2): %w", err)
	}
	if h.ID != nil {
		ids := map[string]bool{}
		for _, m := range got {
			if id := h.ID(m); ids[id] {
				return fmt.Errorf("sinktest: a batch written with WriteFrom in two parts gave two measurements the id %q; "+
					"derive ids from the BatchID and the position from+i", id)
			} else {
				ids[id] = true
			}
		}
	}
	return nil
}

// stored calls Stored with a WriteTimeout deadline.
func stored(s sink.Sink, id sink.BatchID) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
	defer cancel()
	var n int
	r := call(WriteTimeout+CancelGrace, func() (err error) {
		n, err = s.(receipter).Stored(ctx, id)
		return err
	})
	if err := r.plain("Stored(batch " + id.String() + ")"); err != nil {
		return 0, err
	}
	return n, r.err
}

// checkReceipts asks Stored about a batch never written, then about one
// written in two parts with WriteFrom: 0, then 2, then the whole batch.
// A sink that keeps no receipts answers sink.ErrNoReceipts, and the rule
// ends there.
func checkReceipts(t *testing.T, h *Harness) error {
	s, err := newSink(t, h)
	if err != nil {
		return err
	}
	n, err := stored(s, batchID)
	switch {
	case errors.Is(err, sink.ErrNoReceipts):
		t.Log("Stored returns sink.ErrNoReceipts: the sink keeps no receipts")
		return closeAfter(s, nil)
	case err != nil:
		return closeAfter(s, fmt.Errorf("sinktest: Stored of a batch never written: %w", err))
	case n != 0:
		return closeAfter(s, fmt.Errorf("sinktest: Stored of a batch never written returned %d; want 0", n))
	}
	batch := Batch("a")
	for _, part := range []struct{ from, to int }{{0, 2}, {2, len(batch)}} {
		if err := writeFrom(s, batchID, part.from, batch[part.from:part.to]); err != nil {
			return closeAfter(s, err)
		}
		if err := flush(s); err != nil {
			return closeAfter(s, err)
		}
		n, err := stored(s, batchID)
		switch {
		case err != nil:
			return closeAfter(s, fmt.Errorf("sinktest: Stored after WriteFrom(from %d) of %d measurements: %w", part.from, part.to-part.from, err))
		case n != part.to:
			return closeAfter(s, fmt.Errorf("sinktest: Stored after WriteFrom(from %d) of %d measurements returned %d; want %d, "+
				"the position up to which the store holds the batch", part.from, part.to-part.from, n, part.to))
		}
	}
	other := batchID
	other.Seq++
	if n, err := stored(s, other); err != nil || n != 0 {
		return closeAfter(s, fmt.Errorf("sinktest: Stored of batch %s, never written, returned (%d, %v) after batch %s was; want (0, nil)", other, n, err, batchID))
	}
	return closeAfter(s, nil)
}

// --- the batch and comparisons ---

// Batch returns the five valid measurements the rules write, with names
// prefixed "sinktest."+tag+"." so that batches with different tags are
// different series. They cover the three kinds; units "%", "B", "s", "" and
// "W"; values with fractions, negative, zero and above 2^32; times in whole
// microseconds in a zone other than UTC; one measurement without
// ResourceID, two with ProjectID and UserID, three with labels (keys and
// values without spaces or "="). Host is always set. Every measurement has
// its own name and resource, so a store that keeps the latest point per
// series keeps all five.
func Batch(tag string) []meter.Measurement {
	zone := time.FixedZone("UTC+2", 2*3600)
	at := time.Date(2026, 11, 21, 12, 30, 15, 123456000, zone)
	if tag == "b" {
		at = at.Add(time.Minute)
	}
	p := "sinktest." + tag + "."
	return []meter.Measurement{
		{Name: p + "gauge", Kind: meter.Gauge, Unit: "%", Value: 42.5, Time: at, Host: "host-1",
			ResourceID: "resource-" + tag + "-1", ProjectID: "project-1", UserID: "user-1",
			Labels: []meter.Label{{Key: "device", Value: "sda"}, {Key: "mode", Value: "user"}}},
		{Name: p + "cumulative", Kind: meter.Cumulative, Unit: "B", Value: 1 << 40, Time: at.Add(time.Millisecond), Host: "host-1",
			ResourceID: "resource-" + tag + "-2", Labels: []meter.Label{{Key: "device", Value: "sdb"}}},
		{Name: p + "delta", Kind: meter.Delta, Unit: "s", Value: -3.25, Time: at.Add(2 * time.Millisecond), Host: "host-2",
			ResourceID: "resource-" + tag + "-3"},
		{Name: p + "zero", Kind: meter.Gauge, Unit: "", Value: 0, Time: at.Add(3 * time.Millisecond), Host: "host-" + tag},
		{Name: p + "small", Kind: meter.Gauge, Unit: "W", Value: 0.001, Time: at.Add(4*time.Millisecond + time.Microsecond), Host: "host-3",
			ResourceID: "resource-" + tag + "-5", ProjectID: "project-2", UserID: "user-2",
			Labels: []meter.Label{{Key: "rack", Value: "r1"}}},
	}
}

// key is the canonical form of m the comparisons use: every field, Time as
// an instant, labels sorted.
func key(m meter.Measurement) string {
	labels := make([]string, len(m.Labels))
	for i, l := range m.Labels {
		labels[i] = strconv.Quote(l.Key) + "=" + strconv.Quote(l.Value)
	}
	slices.Sort(labels)
	var b strings.Builder
	fmt.Fprintf(&b, "%q %s %q %s time=%s host=%q resource=%q project=%q user=%q",
		m.Name, m.Kind, m.Unit, strconv.FormatFloat(m.Value, 'g', -1, 64),
		m.Time.UTC().Format(time.RFC3339Nano), m.Host, m.ResourceID, m.ProjectID, m.UserID)
	if len(labels) > 0 {
		b.WriteString(" labels{" + strings.Join(labels, " ") + "}")
	}
	return b.String()
}

func format(m meter.Measurement) string { return key(m) }

func list(ms []meter.Measurement) string {
	var b strings.Builder
	for i, m := range ms {
		if i == 10 {
			fmt.Fprintf(&b, "\t… and %d more\n", len(ms)-10)
			break
		}
		b.WriteString("\t" + format(m) + "\n")
	}
	return b.String()
}

func normalize(h *Harness, ms []meter.Measurement) []string {
	keys := make([]string, len(ms))
	for i, m := range ms {
		m.Labels = slices.Clone(m.Labels)
		if h.Normalize != nil {
			m = h.Normalize(m)
		}
		keys[i] = key(m)
	}
	return keys
}

// compare checks that got (from Read) holds what was written, want, after
// Normalize; in order when h.Ordered, else as multisets.
func compare(h *Harness, want, got []meter.Measurement) error {
	w, g := normalize(h, want), normalize(h, got)
	how := "in any order"
	if h.Ordered {
		how = "in order (Harness.Ordered)"
		if slices.Equal(w, g) {
			return nil
		}
	} else {
		w, g = slices.Sorted(slices.Values(w)), slices.Sorted(slices.Values(g))
		if slices.Equal(w, g) {
			return nil
		}
	}
	var missing, extra []string
	count := map[string]int{}
	for _, k := range g {
		count[k]++
	}
	for _, k := range w {
		if count[k] > 0 {
			count[k]--
		} else {
			missing = append(missing, k)
		}
	}
	for _, k := range g {
		if count[k] > 0 {
			count[k]--
			extra = append(extra, k)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the store holds %d measurement(s), want the %d written, %s, after Harness.Normalize", len(got), len(want), how)
	section := func(title string, ks []string) {
		if len(ks) == 0 {
			return
		}
		b.WriteString("\n" + title + ":")
		for i, k := range ks {
			if i == 10 {
				fmt.Fprintf(&b, "\n\t… and %d more", len(ks)-10)
				break
			}
			b.WriteString("\n\t" + k)
		}
	}
	section("written, not in the store", missing)
	section("in the store, not written", extra)
	if len(missing) == 0 && len(extra) == 0 {
		section("written", w)
		section("read back", g)
	}
	return errors.New(b.String())
}

// start calls Start with a WriteTimeout deadline.
func start(s sink.Sink) result {
	ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
	defer cancel()
	st := s.(sink.Starter)
	return call(WriteTimeout+CancelGrace, func() error { return st.Start(ctx) })
}

// checkStart starts a sink twice (the second Start does nothing), writes
// to it and closes it; Start after Close fails with an error wrapping
// sink.ErrClosed. NoGoroutineLeak then checks that Close stopped what Start
// started.
func checkStart(t *testing.T, h *Harness) error {
	s, err := newSink(t, h)
	if err != nil {
		return err
	}
	for _, what := range []string{"Start", "a second Start"} {
		r := start(s)
		if err := r.plain(what); err != nil {
			return closeAfter(s, err)
		}
		if r.err != nil {
			return closeAfter(s, fmt.Errorf("sinktest: %s failed: %w", what, r.err))
		}
	}
	if err := write(s, Batch("a")); err != nil {
		return closeAfter(s, err)
	}
	if err := closeOnce(s); err != nil {
		return fmt.Errorf("sinktest: Close of a started sink: %w", err)
	}
	r := start(s)
	if err := r.plain("Start after Close"); err != nil {
		return err
	}
	switch {
	case r.err == nil:
		return errors.New("sinktest: Start after Close returned nil; want an error wrapping sink.ErrClosed")
	case !errors.Is(r.err, sink.ErrClosed):
		return fmt.Errorf("sinktest: Start after Close returned %q, which does not wrap sink.ErrClosed", r.err)
	}
	return nil
}
