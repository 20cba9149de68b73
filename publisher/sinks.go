package publisher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// guardedSink serialises writes: a Sink is never written concurrently, and
// never after it was closed.
type guardedSink struct {
	name   string
	mu     sync.Mutex
	s      sink.Sink
	closed bool
	// The capabilities that change what reaches the store, asserted on s
	// itself and never below a wrapper (see sink.As): a wrapper that does
	// not offer them is written with Write and has no receipts.
	named    sink.NamedWriter
	receipts sink.ReceiptKeeper // only with named, which leaves the receipts
	flusher  sink.Flusher

	// Per-sink figures for SinkStats, kept by write and stored.
	written, rejected, errors atomic.Uint64
	lastSuccess               atomic.Int64 // unix nanoseconds of the last write the sink took; 0: none yet
	failing                   atomic.Bool  // the last write or question failed
}

// account records the outcome of a write of n measurements, or of a
// question about receipts (n 0), for SinkStats.
func (s *guardedSink) account(n int, err error) {
	var partial *sink.PartialError
	switch {
	case err == nil:
	case errors.As(err, &partial):
		s.rejected.Add(uint64(len(partial.Rejected)))
		n -= len(partial.Rejected)
	default:
		s.errors.Add(1)
		s.failing.Store(true)
		return
	}
	s.written.Add(uint64(max(n, 0)))
	s.lastSuccess.Store(time.Now().UnixNano())
	s.failing.Store(false)
}

// errSinkClosed is what a write to a sink the publisher closed returns.
var errSinkClosed = fmt.Errorf("publisher: sink already closed: %w", sink.ErrClosed)

func newGuardedSink(name string, s sink.Sink) *guardedSink {
	g := &guardedSink{name: name, s: s}
	g.named, _ = s.(sink.NamedWriter)
	if g.named != nil {
		g.receipts, _ = s.(sink.ReceiptKeeper)
	}
	g.flusher, _ = s.(sink.Flusher)
	return g
}

// write writes batch to every sink. A retryable failure of any sink makes
// the whole envelope retryable; permanent failures of every failing sink
// make it permanent. Partially rejected measurements are counted and logged.
// A batch in doubt is first checked against each sink's receipts.
func (p *Publisher) write(ctx context.Context, log *envLogger, id sink.BatchID, doubt bool, batch []meter.Measurement) error {
	var errs []error
	permanent := true
	for _, s := range p.sinkList() {
		from, err := p.reconcile(ctx, s, id, doubt, len(batch))
		if err == nil {
			err = s.write(ctx, p.cfg.writeLimit, id, from, batch[from:])
		}
		if errors.Is(err, errSinkClosed) {
			continue // Reconfigure removed it while the batch was in hand: not one of the sinks now
		}
		if r, _ := p.classify(log, s, err); r == sinkTook {
			continue
		}
		log.Warn("sink write failed", "sink", s.name, "measurements", len(batch), "permanent", sink.IsPermanent(err), "err", err)
		errs = append(errs, fmt.Errorf("sink %q: %w", s.name, err))
		permanent = permanent && sink.IsPermanent(err)
	}
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	if permanent {
		return sink.Permanent(err)
	}
	return err
}

// sinkResult is what a sink's answer to a write means for the batch.
type sinkResult int

const (
	// sinkTook: the sink took the batch, all of it or, after a
	// sink.PartialError, all but the measurements it rejected for good.
	sinkTook sinkResult = iota
	// sinkRefused: sink.Permanent, the sink will never take the batch;
	// it is not retried.
	sinkRefused
	// sinkFailed: anything else; the batch is retried, and the store may
	// hold some or all of it already (it is in doubt).
	sinkFailed
)

// classify reads a sink's answer to a write, for the spooled and the
// direct path alike: what it means for the batch, and how many
// measurements the sink rejected for good in a partial failure. It counts
// the rejected measurements and the failed writes, and logs the rejected
// ones; what follows a refusal or a failure is the caller's.
func (p *Publisher) classify(log *envLogger, s *guardedSink, err error) (r sinkResult, rejected int) {
	if err == nil {
		return sinkTook, 0
	}
	var partial *sink.PartialError
	if errors.As(err, &partial) {
		p.c.sinkRejected.Add(uint64(len(partial.Rejected)))
		log.Warn("sink rejected some measurements", "sink", s.name, "rejected", len(partial.Rejected), "err", partial.Err)
		return sinkTook, len(partial.Rejected)
	}
	p.c.sinkErrors.Add(1)
	if sink.IsPermanent(err) {
		return sinkRefused, 0
	}
	return sinkFailed, 0
}

// write writes batch, the measurements of batch id from position from on,
// to the sink: with WriteFrom when the sink takes named batches and id is
// known, with Write otherwise.
func (s *guardedSink) write(ctx context.Context, limit time.Duration, id sink.BatchID, from int, batch []meter.Measurement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	if s.closed {
		return errSinkClosed
	}
	var err error
	if s.named != nil && id.Agent != "" {
		err = s.named.WriteFrom(ctx, id, from, batch)
	} else {
		err = s.s.Write(ctx, batch)
	}
	if err == nil && s.flusher != nil {
		err = s.flusher.Flush(ctx)
	}
	s.account(len(batch), err)
	return err
}

// stored asks the sink how far its store holds batch id, by its receipts;
// sink.ErrNoReceipts when it keeps none.
func (s *guardedSink) stored(ctx context.Context, limit time.Duration, id sink.BatchID) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.receipts == nil || id.Agent == "" {
		return 0, sink.ErrNoReceipts
	}
	if s.closed {
		return 0, errSinkClosed
	}
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	n, err := s.receipts.Stored(ctx, id)
	if err != nil {
		s.account(0, err)
	}
	return n, err
}

// doubtSet remembers, when there is no spool, the batches whose write
// failed after a sink may have taken them, so that the agent's resend is
// checked against the sinks' receipts. It is bounded: past maxDoubts the
// oldest are forgotten, and their resends written again in full.
type doubtSet struct {
	mu    sync.Mutex
	m     map[sink.BatchID]struct{}
	order []sink.BatchID
}

const maxDoubts = 4096

func (d *doubtSet) add(id sink.BatchID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[sink.BatchID]struct{}{}
	}
	if _, ok := d.m[id]; ok {
		return
	}
	if len(d.order) >= maxDoubts {
		delete(d.m, d.order[0])
		d.order = d.order[1:]
	}
	d.m[id] = struct{}{}
	d.order = append(d.order, id)
}

// take reports whether id is in doubt, and forgets it.
func (d *doubtSet) take(id sink.BatchID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.m[id]; !ok {
		return false
	}
	delete(d.m, id)
	if i := slices.Index(d.order, id); i >= 0 {
		d.order = slices.Delete(d.order, i, i+1)
	}
	return true
}
