// Package sink defines where measurements end up: the [Sink] interface that
// every store implements, the error classification the publisher acts on
// ([Permanent], [PartialError]), and sinks that compose others ([Fanout],
// [Discard], [Recorder]).
//
// Store implementations live in subpackages — sink/console, sink/riemann —
// each registering URL schemes so that [Open] can make it from a string
// such as "console://?format=json" or "riemann://127.0.0.1:5555".
//
// # Writing a sink
//
// A sink takes whole batches. Write is never called concurrently and never
// after Close, so a sink needs no locks. It must not keep the batch after it
// returns. Return nil when the store took everything; Permanent(err) when the
// store refused the data itself (retrying cannot help); a *PartialError
// naming the refused measurements when the store took the rest; any other
// error when the whole batch should be tried again later. Batching, retries
// and spooling are the publisher's job, done once for every sink.
package sink
