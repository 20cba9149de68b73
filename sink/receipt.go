package sink

import (
	"context"
	"errors"
	"net/url"
	"strconv"

	"github.com/meterkit/meter"
)

// BatchID names a batch for as long as it travels: the tenant and agent that
// made it and the agent's sequence number. A batch resent after a lost
// acknowledgement, a timeout or a crash keeps its BatchID, whichever
// publisher carries it.
type BatchID struct {
	Tenant string
	Agent  string
	Seq    uint64
}

// String returns tenant/agent/seq, with tenant and agent path-escaped, so
// that distinct BatchIDs have distinct strings. It is fit for a key in a
// store.
func (id BatchID) String() string {
	return url.PathEscape(id.Tenant) + "/" + url.PathEscape(id.Agent) + "/" + strconv.FormatUint(id.Seq, 10)
}

// NamedWriter is implemented by sinks that can take a batch with its name:
// the batch's BatchID and the position in it of the first measurement
// given. The publisher calls WriteFrom instead of Write for every batch it
// can name. A sink uses the name to make what it writes the same when a
// batch is written again (sink/ceilometer derives each sample's message_id
// from it) or to leave receipts ([ReceiptKeeper]).
//
// NamedWriter changes what reaches the store, so the publisher asserts it
// on the sink it was given, never below a wrapper: see [Wrap] and [As].
type NamedWriter interface {
	// WriteFrom writes batch, the measurements of batch id from position
	// from on, like Write. A sink that keeps receipts leaves, in the same
	// store operation as the data, receipts saying how far the store holds
	// the batch (from + the measurements taken so far). Indexes in a
	// *PartialError are into batch.
	WriteFrom(ctx context.Context, id BatchID, from int, batch []meter.Measurement) error
}

// ReceiptKeeper is implemented by sinks whose store keeps, next to the
// data, a receipt for each named batch: a record, written by WriteFrom in
// the same store operation as the measurements it vouches for, that the
// store holds the batch up to a position. The receipt outlives the
// publisher, so a publisher restarted after kill -9, or one that timed out
// waiting for the store's answer, can ask how much of a batch the store
// already took instead of guessing, and write only the rest. With it a batch
// reaches the store once; without it a write whose outcome is unknown is
// repeated (at least once).
//
// Receipts are left by WriteFrom, so the publisher asks Stored only of a
// sink that is also a [NamedWriter], before it writes again a batch whose
// earlier attempt may have reached the store. Like NamedWriter it is never
// taken from below a wrapper.
type ReceiptKeeper interface {
	// Stored returns the position up to which the store holds batch id by
	// its receipts: every measurement before it was taken (or refused for
	// good), none after it is known to be. It returns 0 when no receipt is
	// found, and never more than was stored. It returns an error wrapping
	// ErrNoReceipts when receipts are not enabled; any other error means
	// the store could not be asked, and the caller tries again later.
	Stored(ctx context.Context, id BatchID) (int, error)
}

// Receipter is a sink with both the named write and receipts.
//
// Deprecated: use [NamedWriter] and [ReceiptKeeper], each asserted on its
// own; Receipter will be removed in the next release.
type Receipter interface {
	Sink
	NamedWriter
	ReceiptKeeper
}

// ErrNoReceipts is what a ReceiptKeeper's Stored returns when its receipts
// are not enabled: the caller writes the batch again, at least once.
var ErrNoReceipts = errors.New("sink: receipts are not enabled for this sink")
