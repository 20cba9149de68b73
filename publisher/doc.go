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
// Run blocks until its context ends, finishes the envelopes in hand within
// the drain timeout, and returns. Close closes the receiver and the sinks.
package publisher
