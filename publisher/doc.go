// Package publisher receives batches from agents and writes them to sinks.
//
// A [Publisher] runs a bounded pool of workers on a transport.Receiver. Each
// worker takes one envelope, validates its measurements — an invalid one is
// counted and logged with the agent's id, and the rest of the batch goes on —
// writes the batch to every sink, and only then acknowledges the envelope:
//
//   - every sink accepted it (a *sink.PartialError counts as accepted, its
//     refused measurements counted): "ok", the agent forgets the batch;
//   - a sink failed in a way worth retrying: "retry", the agent keeps the
//     batch and resends it;
//   - every failing sink failed permanently, or no measurement was valid:
//     "rejected", the agent drops the batch and counts it.
//
// Writes to one sink are serialised, whatever the number of workers, because
// a sink is never written concurrently.
//
// With [WithSpool] the publisher acknowledges a batch once it is durably
// spooled, in one lane per sink, and delivers each lane on its own.
//
// # Stages
//
// The pipeline of one envelope is: receive, validate, de-duplicate, the
// stages ([WithStage], [WithStages]; package stage), spool or write, ack.
// What is spooled, written, replayed and checked against receipts is the
// stages' output. A batch the stages reduce to nothing is answered "ok",
// written nowhere and counted ([Stats].FilteredEnvelopes); its seq is
// recorded all the same, so that a resend is a duplicate. The stages see one
// batch at a time, from every agent in turn, with the batch's
// [stage.Origin] (tenant, agent, seq, and this publisher's id) in the
// context of Process. Stages with per-series state (levels) belong in the
// agent, which sees each series whole and in order: in a publisher their
// state stays with the publisher at a failover to another one. A broken
// stage (an error) is logged and counted ([Stats].StageErrors), and the
// batch goes on unstaged from the state before it.
//
// # Stage state and order
//
// A stage that keeps state (a stage.Checkpointer, such as aggregate or
// levels) needs [WithSpool]: [New] refuses it without. Its state, keyed by
// the stages' names in the chain, is committed in the spool transaction
// that stores the batch it staged together with the batch's
// de-duplication mark (a batch staged to nothing commits its state and
// mark alone, answered "ok" and counted filtered), and restored at start.
// Staging and that commit happen under one lock, so the state in the spool
// is the state after exactly the batches the spool holds. After any
// failure between the two (the checkpoint or the spool write fails), the
// stages go back to the state last committed, so that the agent's resend
// is staged from the same state into the same output at the same positions,
// and the receipts of the stores stay exact.
//
// Order-sensitive stages (stage.OrderSensitive, such as levels'
// hysteresis) see the batches of each (tenant, agent) in increasing
// sequence order: a batch whose sequence is not above the last one staged
// for its agent (several batches in flight, a resend after a failover)
// passes them unchanged, counted in [Stats].OutOfOrder; the other stages
// still run on it. The last sequence of each agent is committed with the
// state; an agent silent for a day is forgotten (and, past 100,000 agents,
// the longest silent), counted in [Stats].OrderForgotten: its next batch
// is in order, whatever its sequence.
//
// # The publisher's own batches
//
// Stages that make output without input (stage.Ticker: aggregate's windows
// closing) are ticked every second ([WithTickInterval]). What a tick makes
// is a batch of the publisher's own identity: agent "publisher/<id>"
// ([WithID], default the host name; [Publisher.OwnAgent]) with its own
// increasing sequence numbers (kept in the spool, and never below the
// clock in microseconds), spooled with the stages' state like any batch,
// and delivered to the sinks (with their receipts) like any batch
// ([Stats].Ticked). Aggregates carry the publisher's id as label
// `publisher`, so that windows of two publishers stay distinct series.
//
// # Delivered once
//
// Agents resend a batch until it is acknowledged, and the publisher drops a
// resend it already has by (tenant, agent, seq), within a window that the
// spool keeps across restarts: an agent's last 4096 seqs, and every seq
// accepted in the last 10 minutes ([WithDedupWindow]). The window is also
// the one memory of what was accepted when envelopes are sealed (package
// transport/seal): a captured frame replayed within seal's window opens
// again, and is answered "duplicate" here without a sink write. Only
// authenticated headers reach the window, so a forged one cannot mark a
// real batch as accepted. One case is left: a write whose outcome is
// unknown. The store may have taken a batch when the publisher was killed
// before recording the delivery, or when a write timed out while the store
// was slow. Such a batch is "in doubt": every batch a publisher finds in its
// spool at start, every spooled batch whose write failed, and, without a
// spool, a resend of a batch whose write failed. When a sink keeps receipts
// ([sink.NamedWriter] and [sink.ReceiptKeeper], such as sink/riemann
// WithReceipts), the publisher asks it how much of a batch in doubt its
// store already holds and writes only the rest ([Stats].Reconciled).
// Otherwise the batch is written again and counted in [Stats].ResentInDoubt:
// delivered at least once, never lost.
//
// The publisher asserts these capabilities, and [sink.Flusher], on the sink
// given to [WithSink] itself, never below a wrapper: a wrapper around a sink
// with receipts keeps them only when it offers them itself, which
// [sink.Wrap] does in one line. A wrapper written without it hides them, and
// the batches in doubt are resent, counted in [Stats].ResentInDoubt.
//
// # Lifecycle
//
// Run first starts the sinks that have something to start ([sink.Starter],
// found below wrappers as read-only capabilities are: sink/web's server),
// so that the live view serves before the first batch and a port in use
// fails Run at once, with an error wrapping [ErrSinkStart] that names the
// sink. Then it receives: [Publisher.Serving] reports true and the channel
// [Publisher.Ready] returns is closed, which a program waits on before it
// tells its supervisor it is ready (systemd's READY=1). It blocks until its
// context ends or Close is called, finishes the envelopes in hand and drains the spool lanes within the drain timeout,
// and returns. Close stops Run and waits for it to return (within Close's
// context), then closes the receiver, the sinks and the spool, in that
// order: no sink is written after it was closed.
//
// Reconfigure gives a running publisher a new set of sinks and stages (a
// reloaded configuration file) without a restart: unchanged sinks keep
// running, a sink given anew under its name is replaced in place after the
// write in hand, a removed one is closed after it; with a spool, the lane
// of a removed sink is kept, detached (SinkStats.Detached), and delivered
// when a sink of that name comes back, by Reconfigure or at a later start.
package publisher
