package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/meterkit/meter"
)

// Capabilities come in two kinds, and a wrapper treats them differently.
//
// Read-only capabilities (a Stats method, a connection state, an address)
// tell about a sink without changing what reaches its store. A wrapper
// keeps them by having an Unwrap method that returns the sink it wraps, as
// errors do; [As] finds them through any number of wrappers.
//
// Capabilities that change what reaches the store — the named write
// ([NamedWriter]), receipts ([ReceiptKeeper]) and [Flusher] — are never taken
// from below a wrapper: a wrapper that offered the inner sink's WriteFrom
// would let every named batch bypass its own Write. The publisher asserts
// them on the sink it was given. A wrapper implements them itself, or hides
// them; [Wrap] makes a pass-through wrapper that keeps them in one line.

// Unwrap returns the sink s wraps, when s has a method Unwrap() Sink, and
// nil otherwise.
func Unwrap(s Sink) Sink {
	u, ok := s.(interface{ Unwrap() Sink })
	if !ok {
		return nil
	}
	return u.Unwrap()
}

// As finds the first sink in s's chain — s, Unwrap(s), Unwrap(Unwrap(s)), … —
// that implements T, and returns it as a T. It is meant for read-only
// capabilities (stats, connection state) that a wrapper keeps by having an
// Unwrap method.
//
// For the capabilities that change what reaches the store ([NamedWriter],
// [ReceiptKeeper], [Flusher] and the deprecated [Receipter]) As looks at s
// alone and never below a wrapper, since writing past a wrapper would skip
// it: such a capability is s's own or none.
func As[T any](s Sink) (T, bool) {
	walk := true
	switch any((*T)(nil)).(type) {
	case *NamedWriter, *ReceiptKeeper, *Flusher, *Receipter:
		walk = false
	}
	for s != nil {
		if t, ok := s.(T); ok {
			return t, true
		}
		if !walk {
			break
		}
		s = Unwrap(s)
	}
	var zero T
	return zero, false
}

// WriteFunc writes one batch: the next step of a wrapper made with [Wrap].
type WriteFunc func(ctx context.Context, batch []meter.Measurement) error

// Wrap returns a Sink that passes every batch through write, with next
// writing it to inner. write logs, counts, times or retries as it likes and
// calls next (or not) with the batch; what next returns is inner's answer.
// Close closes inner.
//
// The Sink returned offers exactly the capabilities of inner that change
// what reaches the store, and routes them through write: when inner is a
// [NamedWriter], so is the wrapper, and its WriteFrom calls write with a next
// that calls inner's WriteFrom with the batch's name and position; when
// inner also keeps receipts ([ReceiptKeeper]; they are left by the named
// write, so never without it), Stored asks inner; when inner
// is a [Flusher], Flush flushes it. Its Unwrap returns inner, so [As] finds
// inner's read-only capabilities through it. A wrapper written by hand,
// without Wrap, hides all of these unless it implements them itself: the
// publisher then writes batches in doubt again (publisher.Stats.ResentInDoubt)
// instead of reconciling them with the store's receipts.
//
// next must be given the batch's measurements, all of them, in their order
// (copies, or changed in content, are fine): a named batch's positions count
// them. For a named batch next refuses, permanently, a batch of another
// length. A wrapper that drops or adds measurements is not a pass-through:
// write a Sink and offer only what it can honour.
func Wrap(inner Sink, write func(ctx context.Context, batch []meter.Measurement, next WriteFunc) error) Sink {
	w := &wrapped{inner: inner, write: write}
	n, named := inner.(NamedWriter)
	r, receipts := inner.(ReceiptKeeper)
	f, flushes := inner.(Flusher)
	w.named, w.receipts, w.flusher = n, r, f
	switch {
	case named && receipts && flushes:
		return wrappedNamedReceiptsFlush{wrappedNamedReceipts{wrappedNamed{w}}}
	case named && receipts:
		return wrappedNamedReceipts{wrappedNamed{w}}
	case named && flushes:
		return wrappedNamedFlush{wrappedNamed{w}}
	case named:
		return wrappedNamed{w}
	case flushes:
		return wrappedFlush{w}
	default:
		return w
	}
}

type wrapped struct {
	inner    Sink
	write    func(context.Context, []meter.Measurement, WriteFunc) error
	named    NamedWriter
	receipts ReceiptKeeper
	flusher  Flusher
}

func (w *wrapped) Write(ctx context.Context, batch []meter.Measurement) error {
	return w.write(ctx, batch, w.inner.Write)
}

func (w *wrapped) Close(ctx context.Context) error { return w.inner.Close(ctx) }

// Unwrap returns the wrapped sink.
func (w *wrapped) Unwrap() Sink { return w.inner }

func (w *wrapped) writeFrom(ctx context.Context, id BatchID, from int, batch []meter.Measurement) error {
	return w.write(ctx, batch, func(ctx context.Context, b []meter.Measurement) error {
		if len(b) != len(batch) {
			return Permanent(fmt.Errorf("sink: a wrapper gave %d measurements for %d of named batch %s: "+
				"one that drops or adds measurements cannot forward named writes", len(b), len(batch), id))
		}
		return w.named.WriteFrom(ctx, id, from, b)
	})
}

type wrappedFlush struct{ *wrapped }

func (w wrappedFlush) Flush(ctx context.Context) error { return w.flusher.Flush(ctx) }

type wrappedNamed struct{ *wrapped }

func (w wrappedNamed) WriteFrom(ctx context.Context, id BatchID, from int, batch []meter.Measurement) error {
	return w.writeFrom(ctx, id, from, batch)
}

type wrappedNamedFlush struct{ wrappedNamed }

func (w wrappedNamedFlush) Flush(ctx context.Context) error { return w.flusher.Flush(ctx) }

type wrappedNamedReceipts struct{ wrappedNamed }

func (w wrappedNamedReceipts) Stored(ctx context.Context, id BatchID) (int, error) {
	return w.receipts.Stored(ctx, id)
}

type wrappedNamedReceiptsFlush struct{ wrappedNamedReceipts }

func (w wrappedNamedReceiptsFlush) Flush(ctx context.Context) error { return w.flusher.Flush(ctx) }

// withCapabilities returns f as a Sink that offers the capabilities every
// child allows (see Fanout).
func withCapabilities(f *fanout) Sink {
	named, flushes := true, false
	for _, s := range f.sinks {
		_, n := s.(NamedWriter)
		_, fl := s.(Flusher)
		named = named && n
		flushes = flushes || fl
	}
	switch {
	case named && flushes:
		return fanoutNamedFlush{fanoutNamed{f}}
	case named:
		return fanoutNamed{f}
	case flushes:
		return fanoutFlush{f}
	default:
		return f
	}
}

// flush flushes every child that buffers.
func (f *fanout) flush(ctx context.Context) error {
	var errs []error
	for _, s := range f.sinks {
		if fl, ok := s.(Flusher); ok {
			errs = append(errs, fl.Flush(ctx))
		}
	}
	return errors.Join(errs...)
}

type fanoutFlush struct{ *fanout }

func (f fanoutFlush) Flush(ctx context.Context) error { return f.flush(ctx) }

type fanoutNamed struct{ *fanout }

// WriteFrom writes the batch to every child with its name and position.
func (f fanoutNamed) WriteFrom(ctx context.Context, id BatchID, from int, batch []meter.Measurement) error {
	return f.each(func(s Sink) error { return s.(NamedWriter).WriteFrom(ctx, id, from, batch) })
}

type fanoutNamedFlush struct{ fanoutNamed }

func (f fanoutNamedFlush) Flush(ctx context.Context) error { return f.flush(ctx) }
