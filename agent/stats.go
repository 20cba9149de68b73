package agent

import (
	"log/slog"
	"sync/atomic"

	"github.com/meterkit/meter/internal/stagestate"
	"github.com/meterkit/meter/internal/statslog"
	"github.com/meterkit/meter/stage"
)

type counters struct {
	collections, collectErrors, panics, overruns atomic.Uint64
	accepted, invalid                            atomic.Uint64
	batches, acked, ackedMeasurements, resent    atomic.Uint64
	rejected, rejectedMeasurements               atomic.Uint64
	dropped, droppedMeasurements, unsent         atomic.Uint64
	staged, stagedOut, stageErrors               atomic.Uint64
	oversized, split, refusals, downgraded       atomic.Uint64
	failed, failedMeasurements                   atomic.Uint64
	pushDuplicates                               atomic.Uint64
}

// Stats counts what the agent did since it was made. It is an
// [slog.LogValuer]: the periodic "agent stats" line (WithStatsInterval)
// writes the fields with their log keys, shown in the struct tags.
type Stats struct {
	Collections          uint64 `log:"collections"`          // driver collections run
	CollectErrors        uint64 `log:"collect_errors"`       // collections that returned an error
	Panics               uint64 `log:"panics"`               // collections that panicked (recovered)
	Overruns             uint64 `log:"overruns"`             // collections that took longer than their timeout
	Added                uint64 `log:"added"`                // measurements offered by drivers and Add
	Invalid              uint64 `log:"invalid"`              // measurements dropped by Validate
	Batches              uint64 `log:"batches"`              // batches made
	Queued               int    `log:"queued_batches,gauge"` // batches waiting to be sent now
	QueuedBytes          int    `log:"queued_bytes,gauge"`   // memory of the in-memory queue's batches, those being sent included (0 with a spool)
	Acked                uint64 `log:"acked_batches"`        // batches the publisher accepted
	AckedMeasurements    uint64 `log:"acked"`
	Resent               uint64 `log:"resent"`           // resend attempts
	Rejected             uint64 `log:"rejected_batches"` // batches the publisher refused for good
	RejectedMeasurements uint64 `log:"rejected"`
	Dropped              uint64 `log:"dropped_batches"` // batches dropped because the queue was full
	DroppedMeasurements  uint64 `log:"dropped"`
	Unsent               uint64 `log:"unsent"`         // measurements still unacknowledged when Run gave up draining
	Staged               uint64 `log:"staged"`         // valid measurements given to the stages (WithStage)
	StagedOut            uint64 `log:"staged_out"`     // measurements the stages made of them, batched in their place
	StageErrors          uint64 `log:"stage_errors"`   // collections a broken stage failed; they went on unstaged
	Oversized            uint64 `log:"oversized"`      // measurements dropped because each alone is too large for any frame
	Split                uint64 `log:"split"`          // batches split because the sender or the publisher found them too large
	Failed               uint64 `log:"failed_batches"` // batches dropped on a permanent error of the sender (transport.IsPermanent)
	FailedMeasurements   uint64 `log:"failed"`
	Refusals             uint64 `log:"refusals"`        // answers that the publisher's configuration refuses this agent (see Refused)
	PushDuplicates       uint64 `log:"push_duplicates"` // push deliveries whose key the spool already held: acknowledged, not stored again
	Downgraded           uint64 `log:"downgraded"`      // batches sent again as envelope version 1 after the publisher rejected version 2 (transport.PeerVersioner)
	// Stages are the counters of each stage that counts (in, out, dropped,
	// resets, late, series, …: stage.Stats), by its name in the chain
	// (stage.StatsByStage), for the stages in use now. The stats line
	// writes them after the other keys, as group "stages" (such as
	// stages.rate.resets=1); /metrics (agenthttp) as meterkit_stage_…
	// labelled stage.
	Stages []stage.StageStats
}

// Stats returns a snapshot of the agent's counters.
func (a *Agent) Stats() Stats {
	c := &a.c
	return Stats{
		Collections: c.collections.Load(), CollectErrors: c.collectErrors.Load(),
		Panics: c.panics.Load(), Overruns: c.overruns.Load(),
		Added: c.accepted.Load(), Invalid: c.invalid.Load(),
		Batches: c.batches.Load(), Queued: a.q.pending(), QueuedBytes: a.q.pendingBytes(),
		Acked: c.acked.Load(), AckedMeasurements: c.ackedMeasurements.Load(),
		Resent: c.resent.Load(), Rejected: c.rejected.Load(), RejectedMeasurements: c.rejectedMeasurements.Load(),
		Dropped: c.dropped.Load(), DroppedMeasurements: c.droppedMeasurements.Load(),
		Unsent: c.unsent.Load(),
		Staged: c.staged.Load(), StagedOut: c.stagedOut.Load(), StageErrors: c.stageErrors.Load(),
		Oversized: c.oversized.Load(), Split: c.split.Load(),
		Failed: c.failed.Load(), FailedMeasurements: c.failedMeasurements.Load(),
		Refusals: c.refusals.Load(), PushDuplicates: c.pushDuplicates.Load(), Downgraded: c.downgraded.Load(),
		Stages: a.stageStats(),
	}
}

// LogValue returns the counters as the "agent stats" line writes them.
func (s Stats) LogValue() slog.Value {
	return statslog.WithGroup(statslog.Value(s), "stages", stagestate.Attrs(s.Stages))
}
