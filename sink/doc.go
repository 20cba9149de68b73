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
//
// # Capabilities
//
// A sink offers more through optional one-method interfaces, found by type
// assertion: [Flusher] (it buffers), [NamedWriter] (it takes a batch with
// its [BatchID] and position, for stable ids or receipts) and
// [ReceiptKeeper] (its store keeps receipts, so a batch in doubt is written
// once). These change what reaches the store, so the publisher asserts them
// on the sink it was given and never below a wrapper. A wrapper offers them
// itself or hides them: [Wrap] makes a logging, counting or timing wrapper
// that keeps exactly the inner sink's capabilities, routed through the
// wrapper. Read-only capabilities (stats, connection state) survive any
// wrapper that has an Unwrap() Sink method, as errors do; [As] finds them.
// So does [Starter], a sink with something to start before the first batch
// (a server): the publisher's Run starts it before it receives, and Close
// stops it.
// [Fanout] offers a capability only where every child allows it, and never
// receipts (see its documentation).
package sink
