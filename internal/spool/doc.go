// Package spool is the one durable store of batches that the agent and the
// publisher keep on disk, in a bbolt file: the agent until the publisher
// acknowledges a batch, the publisher until each sink took it.
//
// A spool holds lanes, one per consumer (the agent has one; the publisher
// one per sink, each with its own position). An Append puts one batch in
// every lane, drops the oldest batches of a lane that would go over its
// bound, and writes the caller's metadata (the agent's last sequence
// number, the publisher's de-duplication window, stage state), all in one
// transaction: after a crash, either all of it is on disk or none.
//
// Each batch is stored under an increasing 8-byte big-endian id as a
// 4-byte big-endian measurement count followed by the envelope's wire
// encoding (transport.AppendEnvelope), so a stored batch is a frame that a
// transport.RawSender sends as it is. This is the format both spools wrote
// before this package, and each caller gives the bucket of each lane, so
// files of earlier releases open as they are.
//
// Crash-safety rules, each tested by killing a process with SIGKILL:
//   - a batch and its metadata are written in one transaction;
//   - dropping the oldest batches happens in the transaction of the append;
//   - batches are forgotten in any order (several in flight);
//   - the delivered-marks file (Layout.Marks) is written without fsync and
//     may be lost or damaged by a machine crash: it is then made anew, and
//     the batches it marked are delivered again, never lost;
//   - a damaged spool file is an error naming it, never a panic;
//   - one process uses a spool at a time: a second one is told the file is
//     in use by another process.
package spool
