package notification

import (
	"log/slog"
	"sync/atomic"

	"github.com/meterkit/meter/internal/statslog"
)

type counters struct {
	consumed, acked, rejected, unmatched, requeued atomic.Uint64
	redelivered, incomplete, measurements          atomic.Uint64
	ackFailed, reconnects, invalid, duplicates     atomic.Uint64
}

// Stats counts what the driver did since it was made. It is an
// [slog.LogValuer] whose keys are in the struct tags: Push logs it every
// Config.StatsEvery as the "notification stats" line, and once more when it
// returns. Redeliveries recognised by the agent's spool are counted by the
// agent (agent Stats.PushDuplicates), those recognised here in Duplicates.
type Stats struct {
	Consumed     uint64 `log:"consumed"`     // messages received from the broker
	Acked        uint64 `log:"acked"`        // messages acknowledged: durable, or nothing to measure
	Rejected     uint64 `log:"rejected"`     // malformed messages, rejected without requeue
	Unmatched    uint64 `log:"unmatched"`    // notifications no definition matched (acknowledged)
	Incomplete   uint64 `log:"incomplete"`   // notifications a matching definition found fields missing in
	Requeued     uint64 `log:"requeued"`     // messages given back to the queue because the agent did not make them durable
	Redelivered  uint64 `log:"redelivered"`  // messages the broker marked as redelivered
	Duplicates   uint64 `log:"duplicates"`   // redeliveries recognised as already durable (RecentIDs), acknowledged only
	Measurements uint64 `log:"measurements"` // measurements delivered to the agent
	Invalid      uint64 `log:"invalid"`      // measurements dropped because they fail meter.Validate
	AckFailed    uint64 `log:"ack_failed"`   // acks that failed (the channel was gone): the broker redelivers those
	Reconnects   uint64 `log:"reconnects"`   // connections lost or refused
}

// Stats returns a snapshot of the driver's counters.
func (d *Driver) Stats() Stats {
	c := &d.c
	return Stats{
		Consumed: c.consumed.Load(), Acked: c.acked.Load(), Rejected: c.rejected.Load(),
		Unmatched: c.unmatched.Load(), Incomplete: c.incomplete.Load(), Requeued: c.requeued.Load(),
		Redelivered: c.redelivered.Load(), Measurements: c.measurements.Load(),
		AckFailed: c.ackFailed.Load(), Reconnects: c.reconnects.Load(), Invalid: c.invalid.Load(), Duplicates: c.duplicates.Load(),
	}
}

// LogValue returns the counters with their log keys.
func (s Stats) LogValue() slog.Value { return statslog.Value(s) }
