package agent

import "sync/atomic"

type counters struct {
	collections, collectErrors, panics, overruns atomic.Uint64
	accepted, invalid                            atomic.Uint64
	batches, acked, ackedMeasurements, resent    atomic.Uint64
	rejected, rejectedMeasurements               atomic.Uint64
	dropped, droppedMeasurements, unsent         atomic.Uint64
}

// Stats counts what the agent did since it was made.
type Stats struct {
	Collections          uint64 // driver collections run
	CollectErrors        uint64 // collections that returned an error
	Panics               uint64 // collections that panicked (recovered)
	Overruns             uint64 // collections that took longer than their timeout
	Added                uint64 // measurements offered by drivers and Add
	Invalid              uint64 // measurements dropped by Validate
	Batches              uint64 // batches made
	Queued               int    // batches waiting to be sent now
	Acked                uint64 // batches the publisher accepted
	AckedMeasurements    uint64
	Resent               uint64 // resend attempts
	Rejected             uint64 // batches the publisher refused for good
	RejectedMeasurements uint64
	Dropped              uint64 // batches dropped because the queue was full
	DroppedMeasurements  uint64
	Unsent               uint64 // measurements still unacknowledged when Run gave up draining
}

// Stats returns a snapshot of the agent's counters.
func (a *Agent) Stats() Stats {
	c := &a.c
	return Stats{
		Collections: c.collections.Load(), CollectErrors: c.collectErrors.Load(),
		Panics: c.panics.Load(), Overruns: c.overruns.Load(),
		Added: c.accepted.Load(), Invalid: c.invalid.Load(),
		Batches: c.batches.Load(), Queued: a.q.pending(),
		Acked: c.acked.Load(), AckedMeasurements: c.ackedMeasurements.Load(),
		Resent: c.resent.Load(), Rejected: c.rejected.Load(), RejectedMeasurements: c.rejectedMeasurements.Load(),
		Dropped: c.dropped.Load(), DroppedMeasurements: c.droppedMeasurements.Load(),
		Unsent: c.unsent.Load(),
	}
}
