// Package agent runs drivers and delivers what they measure.
//
// An [Agent] calls each driver on its own interval, with the collection
// timeout as ctx's deadline. Drivers that are due together are woken by one
// timer, on a grid offset once per agent by the jitter, and collected
// concurrently; a driver still collecting when it is due again skips that
// turn, so a slow driver delays only itself. A driver that panics is
// recovered, logged with its stack and called again at its next interval. Measurements without a host or time get the
// agent's; invalid ones are dropped, counted and logged with the driver's
// name.
//
// Measurements are batched by size and age into numbered envelopes,
// queued in memory in their wire encoding (bounded in batches and in bytes,
// WithQueueBytes: a driver's collection that does not fit waits up to its
// interval for room, then the oldest batches are dropped and counted), and
// sent through a transport.Sender. A batch leaves the queue
// when the publisher acknowledges it; a "retry" answer or a transport error
// resends it with exponential backoff, a "rejected" answer drops and counts
// it.
//
// Batches are cut so that each encoded envelope fits the sender's frame
// limit (transport.FrameLimiter; 4 MiB when it reports none), bytes first,
// then count, and to the frame size the sender prefers when that is
// smaller (transport.FramePreferrer: nanomsg sends and receives frames
// just under 64 KiB in pooled buffers, larger ones in fresh ones): a
// collection larger than a frame becomes several batches with consecutive
// sequence numbers, in collection order. A measurement larger than the
// preferred size but within the limit goes alone in its batch. Only a measurement
// larger than any frame is dropped, counted (Stats.Oversized) and logged
// with its driver's name. A batch the sender or the publisher finds too
// large is split in halves and the parts sent in its place (Stats.Split);
// when the publisher says its limit, batches are cut to it from then on.
// A permanent error of the sender (transport.IsPermanent) drops that batch
// (Stats.Failed) and the next one goes on. A publisher whose configuration
// refuses this agent (transport.ErrRefused) is not the batch's fault: the
// batches are kept and sent again with backoff, each refusal is logged as
// an error and counted (Stats.Refusals), and Refused reports it.
//
// Batches are written in the newest envelope version the publisher says it
// reads (transport.PeerVersioner): version 1 until the first ack of a
// publisher of this release, then version 2, which carries the levels
// stage's meterkit.state label in two bytes. A publisher of an earlier
// release rejects version 2: the batch is sent again as version 1, same
// Seq (Stats.Downgraded, logged once), and the next ones are version 1.
// With a spool, batches are version 1 (see package transport, Versions).
//
// A driver that is a driver.Pusher (a message bus consumer) is not polled:
// Run calls its Push once in a goroutine of its own, again after a backoff
// if it returns early or panics. Each delivery's ack fires once every batch
// holding some of its measurements is durable: committed to the spool
// (WithSpool), or without a spool acknowledged by the publisher; it fires
// with an error wrapping driver.ErrNotDelivered when such a batch was
// rejected, failed, dropped or still unacknowledged when Run returned.
// A delivery waits for room in the memory queue or the spool (back-pressure)
// rather than pushing older batches out. With a spool, the keys of recent
// deliveries (driver.Delivery.Key, DefaultPushKeys of them) are written in the
// transaction that commits their last measurements, so a delivery whose key
// the spool holds (redelivered after a crash) is acknowledged at once and not
// stored again (Stats.PushDuplicates). See push.go.
//
// # Stage state
//
// Stages (WithStage, WithStages) run on each collection before batching.
// The state of those that keep it (stage.Checkpointer: rate, delta,
// levels, aggregate), keyed by their names in the chain, goes into the
// spool (WithSpool) in the transaction of the batch holding the
// collection's last output: a collection's output goes into one batch when
// it fits (the batch before it is flushed first); output larger than a
// batch (more measurements than WithBatch's count, or more bytes than the
// sender's preferred frame) is cut into batches, each within those limits
// and numbered consecutively, that go into the spool all together with the
// state, in one transaction (the spool's bound then holds for their total:
// when it cannot make room for all of them, none is stored); and a
// collection staged to nothing commits the state alone. So every part of a
// collection's output is stored exactly once across a crash, whatever its
// size. A push delivery's staged output is batched as the delivery's
// acknowledgement requires instead (see push.go), a batch at a time. At
// the next start the state is
// restored, so a crash loses the output that had not reached the spool
// together with the state that made it: the first collection of each
// series after a restart is staged against the last point that reached the
// spool (a rate covers the interval since then, counted once). A batch
// (or a collection's batches) the spool cannot store is dropped and
// counted, and the stages go back to the state in the spool, so that the
// next rate or delta covers the dropped interval too. A stage
// renamed or added starts fresh; one whose state cannot be read starts
// fresh, logged. Without a spool the state lives in memory only, which the
// agent logs once at start: after a restart the first collection of each
// series gives no rate or delta.
//
// Run blocks until its context ends, then stops the drivers, flushes the last
// partial batch and keeps sending for up to the drain timeout. Stats returns
// the counters.
//
// Reconfigure gives a running agent a new set of drivers and stages (a
// reloaded configuration file) without a restart, keeping its queue or
// spool: drivers given again as the same value keep running with their
// state, the others are stopped after the collection in hand and closed,
// and the stages that stay keep their state (see Reconfigure).
package agent
