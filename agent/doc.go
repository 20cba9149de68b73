// Package agent runs drivers and delivers what they measure.
//
// An [Agent] calls each driver on its own interval, spread by jitter, with
// the collection timeout as ctx's deadline. A driver that panics is
// recovered, logged with its stack and called again at its next interval; a
// slow driver delays only itself. Measurements without a host or time get the
// agent's; invalid ones are dropped, counted and logged with the driver's
// name.
//
// Measurements are batched by size and age into numbered envelopes,
// queued in memory (bounded; when full the oldest batch is dropped and
// counted), and sent through a transport.Sender. A batch leaves the queue
// when the publisher acknowledges it; a "retry" answer or a transport error
// resends it with exponential backoff, a "rejected" answer drops and counts
// it.
//
// Run blocks until its context ends, then stops the drivers, flushes the last
// partial batch and keeps sending for up to the drain timeout. Stats returns
// the counters.
package agent
