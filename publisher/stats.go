package publisher

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/meterkit/meter/internal/stagestate"
	"github.com/meterkit/meter/internal/statslog"
	"github.com/meterkit/meter/stage"
)

type counters struct {
	envelopes, received, invalid, written, acked atomic.Uint64
	rejectedEnvelopes, retryEnvelopes, ackErrors atomic.Uint64
	sinkErrors, sinkRejected                     atomic.Uint64
	duplicates, spooled, spoolDropped            atomic.Uint64
	sinkRetries, sinkDropped                     atomic.Uint64
	reconciled, resentInDoubt                    atomic.Uint64
	staged, stagedOut, filtered                  atomic.Uint64
	filteredEnvelopes, stageErrors               atomic.Uint64
	outOfOrder, ticked                           atomic.Uint64
}

// Stats counts what the publisher did since it was made. It is an
// [slog.LogValuer]: the periodic "publisher stats" line
// (WithStatsInterval) writes the fields with their log keys, shown in the
// struct tags.
type Stats struct {
	Envelopes         uint64 `log:"envelopes"`     // envelopes handed over by the receiver
	Received          uint64 `log:"received"`      // measurements in them
	Invalid           uint64 `log:"invalid"`       // measurements dropped by Validate
	Written           uint64 `log:"written"`       // measurements sinks accepted (summed over sinks when spooling)
	Acked             uint64 `log:"acked"`         // envelopes acknowledged OK
	RejectedEnvelopes uint64 `log:"rejected"`      // envelopes answered "rejected"
	RetryEnvelopes    uint64 `log:"retry"`         // envelopes answered "retry" (a sink failed)
	AckErrors         uint64 `log:"ack_errors"`    // acknowledgements that could not be sent
	SinkErrors        uint64 `log:"sink_errors"`   // failed sink writes
	SinkRejected      uint64 `log:"sink_rejected"` // measurements a sink refused in a partial failure
	Duplicates        uint64 `log:"duplicates"`    // envelopes acknowledged again without delivery (resent after a lost ack)
	Spooled           uint64 `log:"spooled"`       // measurements acknowledged once spooled (WithSpool)
	Pending           uint64 `log:"pending,gauge"` // measurements in the spool not yet delivered, summed over sinks
	SpoolDropped      uint64 `log:"spool_dropped"` // measurements dropped because a spool lane was full
	SinkRetries       uint64 `log:"sink_retries"`  // failed writes of spooled batches, retried with backoff
	SinkDropped       uint64 `log:"sink_dropped"`  // spooled measurements a sink refused for good
	// Reconciled counts measurements of batches in doubt (an earlier attempt
	// may have reached the store) that a sink's receipts showed the store
	// held already, and that were therefore not written again.
	Reconciled uint64 `log:"reconciled"`
	// ResentInDoubt counts measurements of batches in doubt written again to
	// a sink that keeps no receipts: the store may now hold them twice.
	ResentInDoubt uint64 `log:"resent_in_doubt"`
	Staged        uint64 `log:"staged"`     // measurements given to the stages (WithStage), after validation and de-duplication
	StagedOut     uint64 `log:"staged_out"` // measurements the stages made of them, spooled or written in their place
	// Filtered counts the measurements the stages removed: of each batch,
	// what went in less what came out, when fewer came out.
	Filtered uint64 `log:"filtered"`
	// FilteredEnvelopes counts the envelopes the stages reduced to nothing:
	// acknowledged OK, neither spooled nor written.
	FilteredEnvelopes uint64 `log:"filtered_envelopes"`
	StageErrors       uint64 `log:"stage_errors"` // batches a broken stage failed; they went on unstaged
	// OutOfOrder counts the batches whose sequence was not above the last
	// one staged for their (tenant, agent): they skipped the
	// order-sensitive stages (stage.OrderSensitive).
	OutOfOrder uint64 `log:"out_of_order"`
	// Ticked counts the measurements the stages made without input
	// (stage.Ticker), sent as batches of the publisher's own identity.
	Ticked uint64 `log:"ticked"`
	// OrderForgotten counts the sources (tenant, agent) whose order the
	// publisher forgot: silent for a day, or the longest silent past
	// 100,000 sources. A forgotten source's next batch is in order.
	OrderForgotten uint64 `log:"order_forgotten"`
	// Stages are the counters of each stage that counts (in, out, dropped,
	// resets, late, series, …: stage.Stats), by its name in the chain
	// (stage.StatsByStage), for the stages in use now. The stats line
	// writes them after the other keys, as group "stages" (such as
	// stages.stale.series=12); /metrics (publisherhttp) as
	// meterkit_stage_… labelled stage.
	Stages []stage.StageStats
}

// LogValue returns the counters as the "publisher stats" line writes them.
func (s Stats) LogValue() slog.Value {
	return statslog.WithGroup(statslog.Value(s), "stages", stagestate.Attrs(s.Stages))
}

// Stats returns a snapshot of the publisher's counters.
func (p *Publisher) Stats() Stats {
	c := &p.c
	st := Stats{
		Envelopes: c.envelopes.Load(), Received: c.received.Load(), Invalid: c.invalid.Load(),
		Written: c.written.Load(), Acked: c.acked.Load(), RejectedEnvelopes: c.rejectedEnvelopes.Load(),
		RetryEnvelopes: c.retryEnvelopes.Load(), AckErrors: c.ackErrors.Load(),
		SinkErrors: c.sinkErrors.Load(), SinkRejected: c.sinkRejected.Load(),
		Duplicates: c.duplicates.Load(), Spooled: c.spooled.Load(), SpoolDropped: c.spoolDropped.Load(),
		SinkRetries: c.sinkRetries.Load(), SinkDropped: c.sinkDropped.Load(),
		Reconciled: c.reconciled.Load(), ResentInDoubt: c.resentInDoubt.Load(),
		Staged: c.staged.Load(), StagedOut: c.stagedOut.Load(), Filtered: c.filtered.Load(),
		FilteredEnvelopes: c.filteredEnvelopes.Load(), StageErrors: c.stageErrors.Load(),
		OutOfOrder: c.outOfOrder.Load(), Ticked: c.ticked.Load(),
		OrderForgotten: p.st.forgotten.Load(), Stages: p.stageStats(),
	}
	st.Pending = p.pending()
	return st
}

// pending is how many measurements the spool holds not yet delivered,
// summed over sinks.
func (p *Publisher) pending() uint64 {
	if p.spool == nil {
		return 0
	}
	var n uint64
	for _, s := range p.sinkList() {
		_, m := p.spool.pending(s.name)
		n += uint64(m)
	}
	return n
}

// SinkStats is what one sink took since the publisher was made. It is an
// [slog.LogValuer] like Stats.
type SinkStats struct {
	Name     string // the sink's name (WithSink), which keys its spool lane
	Written  uint64 `log:"written"`  // measurements the sink took
	Rejected uint64 `log:"rejected"` // measurements it refused in partial failures
	Errors   uint64 `log:"errors"`   // failed writes (and failed questions about its receipts)
	// Pending and PendingBatches are what the sink's spool lane holds not
	// yet delivered (0 without a spool).
	Pending        uint64 `log:"pending,gauge"`
	PendingBatches uint64 `log:"pending_batches,gauge"`
	// LastSuccess is when the sink last took a write; zero if never.
	LastSuccess time.Time
	// Failing reports that the sink's last write failed: its lane backs
	// off, or the agents are answered "retry".
	Failing bool
	Lane    bool // the sink has a spool lane (WithSpool)
	// Detached reports a spool lane whose sink is no longer configured
	// (Reconfigure removed it, or the publisher started without it): kept,
	// not delivered, and delivered again if a sink of that name comes back.
	Detached bool
}

// LogValue returns the tagged figures as log attributes.
func (s SinkStats) LogValue() slog.Value { return statslog.Value(s) }

// SinkStats returns a snapshot of each sink's figures, in the order the
// sinks were given.
func (p *Publisher) SinkStats() []SinkStats {
	sinks := p.sinkList()
	out := make([]SinkStats, 0, len(sinks))
	for _, s := range sinks {
		st := SinkStats{Name: s.name, Written: s.written.Load(), Rejected: s.rejected.Load(),
			Errors: s.errors.Load(), Failing: s.failing.Load()}
		if ns := s.lastSuccess.Load(); ns != 0 {
			st.LastSuccess = time.Unix(0, ns)
		}
		if p.spool != nil {
			st.Lane = true
			b, m := p.spool.pending(s.name)
			st.Pending, st.PendingBatches = uint64(m), uint64(b)
		}
		out = append(out, st)
	}
	return p.appendDetached(out)
}

// Serving reports whether Run is receiving envelopes: it was called, and
// neither its ctx ended nor Close was called. Ready's channel is closed
// the first time it becomes true.
func (p *Publisher) Serving() bool { return p.serving.Load() }
