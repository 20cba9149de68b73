package agent

import (
	"context"
	"time"

	"github.com/meterkit/meter/transport"
)

// store holds batches from the moment they are made until the publisher
// acknowledges (or rejects) them. The in-memory queue loses them when the
// process dies; the disk spool does not.
type store interface {
	// lastSeq is the highest sequence number ever stored (0 when none), so
	// that numbering goes on across restarts.
	lastSeq() uint64
	// push stores a new batch, whose encoding takes about size bytes. It
	// may drop the oldest batches to make room, reporting how many and how
	// many measurements they held.
	// keys are the push deliveries' keys whose last measurements are in
	// the batch: a durable store keeps them in the batch's transaction.
	// kept: the batch holds measurements of a push delivery; it is never
	// dropped to make room (keep.go).
	push(env *transport.Envelope, size int, keys []string, kept bool) (droppedBatches, droppedMeasurements int, err error)
	// room waits, for up to wait or until ctx ends, until need bytes more
	// fit the store's bound, so that a collection is admitted whole rather
	// than dropping older batches while the senders are catching up. It
	// reports whether they fit (or the store is empty).
	room(ctx context.Context, need int, wait time.Duration) bool
	// roomKept is room for a push delivery: only kept batches count, since
	// the others are dropped to make room for it.
	roomKept(ctx context.Context, need int, wait time.Duration) bool
	// pendingBytes is the memory the stored batches take (0 for a store on
	// disk).
	pendingBytes() int
	// next blocks until a batch that is not in flight is stored and returns
	// it in s.env, or returns false once the store is closed and holds
	// nothing more to send, or ctx ends.
	next(ctx context.Context, s *slot) bool
	// done forgets the batch in s: acknowledged or rejected.
	done(s *slot) error
	// release gives up on sending the batch in s for now and reports
	// whether it is kept for a later run (true) or lost (false).
	release(s *slot) (kept bool)
	// close stops pushes; next returns false once nothing is left.
	close()
	// pending counts the batches stored and not yet acknowledged.
	pending() int
	// oldest returns when the oldest batch not yet acknowledged (queued or
	// being sent) was stored, or for a batch of an earlier run when the
	// spool was opened; zero when there is none.
	oldest() time.Time
	// shutdown releases resources after the senders stopped and reports the
	// measurements still stored: kept for the next run, or lost.
	shutdown() (kept, lost int, err error)
}

// slot is one sender's working space: the batch it sends, its stored frame
// and the decoder that owns the decoded batch's memory, and for the disk
// spool the batch's id. With a raw sender the store leaves env nil and the
// frame is sent as it is.
type slot struct {
	env   *transport.Envelope
	dec   transport.Decoder
	buf   transport.Envelope
	id    uint64 // the disk spool's id of the batch
	seq   uint64 // the batch's Seq
	count int    // its measurements
	frame []byte // its wire encoding
	kept  bool   // the memory queue's batch is kept (keep.go)
	fail  error  // why a batch that was delivered was dropped instead (rejected, failed)
}

// header returns the batch's Seq and its number of measurements.
func (s *slot) header() (seq uint64, n int) {
	if s.env != nil {
		return s.env.Seq, len(s.env.Measurements)
	}
	return s.seq, s.count
}
