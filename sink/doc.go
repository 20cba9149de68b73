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
// and spooling are the publisher's job, done once for every sink. Return
// from Write when its ctx ends, with an error that is not permanent. Close
// is safe to call twice, stops every goroutine the sink started, and a Write
// after it fails with an error wrapping [ErrClosed].
//
// Package sink/sinktest checks all of this in one call,
// sinktest.Run(t, sinktest.Harness{...}), against a store your test can
// read: run it in your sink's tests, as every sink of meterkit does.
package sink
