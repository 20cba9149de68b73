package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/permanent"
)

// Sink writes batches of measurements into one store.
//
// Write is never called concurrently, and never after Close, so a Sink needs
// no locks of its own. Write must not keep a reference to batch (or to the
// labels in it) after it returns: the caller reuses the memory. Write returns
// nil when the store accepted every measurement; an error wrapped with
// Permanent when retrying cannot help; a *PartialError when some measurements
// were rejected and the rest accepted; any other error means "try the whole
// batch again later". Batching, retries and spooling live in the publisher,
// once, not in every sink.
//
// Close flushes what the sink buffers and releases its connections, within
// ctx. Close is safe to call more than once.
type Sink interface {
	Write(ctx context.Context, batch []meter.Measurement) error
	Close(ctx context.Context) error
}

// Flusher is implemented by sinks that buffer writes; the publisher calls
// Flush before it acknowledges a batch it wrote to them.
type Flusher interface {
	Flush(ctx context.Context) error
}

// ErrClosed is what a Sink's Write returns, wrapped with the sink's own
// context, when it is called after Close. Test for it with errors.Is.
var ErrClosed = errors.New("sink: closed")

// Permanent marks err as one that retrying cannot fix (the store refused the
// data itself). A nil err stays nil. It is the same mark as
// transport.Permanent.
func Permanent(err error) error { return permanent.Mark(err) }

// IsPermanent reports whether err, or an error it wraps, was marked
// Permanent. An error joining several (errors.Join) is permanent only if every
// one of them is: one retryable failure makes the whole retryable. A
// *PartialError is not permanent as a whole.
func IsPermanent(err error) bool { return permanent.Is(err) }

// PartialError reports that the store rejected some measurements of a batch,
// permanently, and accepted the others.
type PartialError struct {
	// Rejected holds the indexes, into the batch given to Write, of the
	// measurements the store refused, in increasing order.
	Rejected []int
	// Err says why.
	Err error
}

func (e *PartialError) Error() string {
	var b strings.Builder
	b.WriteString("sink: ")
	b.WriteString(strconv.Itoa(len(e.Rejected)))
	b.WriteString(" measurement(s) rejected")
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *PartialError) Unwrap() error { return e.Err }

type fanout struct {
	sinks  []Sink
	closed bool
}

// Fanout returns a Sink that writes every batch to each of sinks in turn.
// Its Write returns the errors of the sinks that failed, joined; it is
// Permanent only if every failure was permanent. The publisher fans out
// itself, with a retry queue per sink, so that one slow store does not stall
// the others: use Fanout where that does not matter.
//
// The Sink returned offers a capability only where its children allow: a
// [NamedWriter] when every child is one (each child is written from the same
// position), a [Flusher] when at least one child is (a child without Flush
// has nothing to flush). It never offers [ReceiptKeeper], even when every
// child keeps receipts: one position cannot say how much of a batch each
// child holds when they differ (after a write that failed in one child
// only), and writing every child again from the least of them would store
// the rest twice in the others. Give each store its own publisher.WithSink
// for exactly-once: the publisher reconciles each sink on its own. Fanout
// has no Unwrap: read-only capabilities of its children are not found
// through it. It is a [Starter] that starts those of its children that are.
func Fanout(sinks ...Sink) Sink {
	return withCapabilities(&fanout{sinks: slices.Clone(sinks)})
}

func (f *fanout) Write(ctx context.Context, batch []meter.Measurement) error {
	return f.each(func(s Sink) error { return s.Write(ctx, batch) })
}

// each calls write for every child and joins the failures; the result is
// Permanent only if every failure was. After Close it writes nothing.
func (f *fanout) each(write func(Sink) error) error {
	if f.closed {
		return fmt.Errorf("sink: fanout: write after Close: %w", ErrClosed)
	}
	var errs []error
	allPermanent := true
	for i, s := range f.sinks {
		if err := write(s); err != nil {
			errs = append(errs, fmt.Errorf("sink %d (%T): %w", i, s, err))
			allPermanent = allPermanent && IsPermanent(err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	if allPermanent {
		return Permanent(err)
	}
	return err
}

// Close closes each sink, once: a second Close returns nil.
func (f *fanout) Close(ctx context.Context) error {
	if f.closed {
		return nil
	}
	f.closed = true
	var errs []error
	for _, s := range f.sinks {
		errs = append(errs, s.Close(ctx))
	}
	return errors.Join(errs...)
}

type discard struct{ closed bool }

func (d *discard) Write(context.Context, []meter.Measurement) error {
	if d != nil && d.closed {
		return fmt.Errorf("sink: discard: write after Close: %w", ErrClosed)
	}
	return nil
}

func (d *discard) Close(context.Context) error {
	if d != nil {
		d.closed = true
	}
	return nil
}

// Discard is a Sink that accepts everything and keeps nothing. It is shared
// by everyone who uses it, so its Close does nothing and it never fails;
// where a discarding sink has one owner, NewDiscard makes one that reports
// a Write after its Close.
var Discard Sink = (*discard)(nil)

// NewDiscard returns a Sink that accepts everything and keeps nothing, like
// Discard, except that Write after Close fails with ErrClosed, as the Sink
// contract has it.
func NewDiscard() Sink { return &discard{} }

// Recorder is a Sink that keeps copies of everything written to it, for
// tests and examples. Unlike other sinks it is safe for concurrent use, so a
// test may read it while a publisher writes.
type Recorder struct {
	mu      sync.Mutex
	got     []meter.Measurement
	batches int
	closed  bool
}

// Write records a deep copy of batch.
func (r *Recorder) Write(_ context.Context, batch []meter.Measurement) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("sink: recorder: write after Close: %w", ErrClosed)
	}
	for _, m := range batch {
		m.Labels = slices.Clone(m.Labels)
		r.got = append(r.got, m)
	}
	r.batches++
	return nil
}

// Close marks the recorder closed; later Writes fail with ErrClosed.
func (r *Recorder) Close(context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
}

// Measurements returns a copy of what was recorded, in order.
func (r *Recorder) Measurements() []meter.Measurement {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// Len returns how many measurements were recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// Batches returns how many Writes succeeded.
func (r *Recorder) Batches() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batches
}

// Closed reports whether Close was called.
func (r *Recorder) Closed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}
