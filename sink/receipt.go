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

// Receipter is implemented by sinks whose store can keep, next to the data,
// a receipt for each batch: a record, written in the same store operation as
// the measurements it vouches for, that the store holds the batch up to a
// position. The receipt outlives the publisher, so a publisher restarted
// after kill -9, or one that timed out waiting for the store's answer, can
// ask how much of a batch the store already took instead of guessing, and
// write only the rest. With it a batch reaches the store once; without it a
// write whose outcome is unknown is repeated (at least once).
//
// The publisher calls WriteFrom instead of Write for every batch it can name,
// and Stored before it writes a batch again whose earlier attempt may have
// reached the store.
type Receipter interface {
	Sink
	// WriteFrom writes batch, the measurements of batch id from position
	// from on, like Write, and leaves receipts saying how far the store
	// holds the batch (from + the measurements taken so far). Indexes in a
	// *PartialError are into batch.
	WriteFrom(ctx context.Context, id BatchID, from int, batch []meter.Measurement) error
	// Stored returns the position up to which the store holds batch id by
	// its receipts: every measurement before it was taken (or refused for
	// good), none after it is known to be. It returns 0 when no receipt is
	// found, and never more than was stored. An error means the store could
	// not be asked; the caller tries again later.
	Stored(ctx context.Context, id BatchID) (int, error)
}

// ErrNoReceipts is what a Receipter's Stored returns when its receipts are
// not enabled: the caller writes the batch again, at least once.
var ErrNoReceipts = errors.New("sink: receipts are not enabled for this sink")
