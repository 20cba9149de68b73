// Package sinktest checks that a sink keeps the contract of sink.Sink. It is
// for sink authors; to use sinks, see the publisher package.
//
// One call in a test of the sink's package runs the whole suite, against a
// store the test can read, much as testing/slogtest does for log/slog
// handlers:
//
//	func TestConformance(t *testing.T) {
//		srv := mystoretest.NewServer(t) // the store, in memory
//		sinktest.Run(t, sinktest.Harness{
//			New: func(t *testing.T) sink.Sink {
//				srv.Reset() // an empty store for every rule
//				s, err := mystore.New(srv.Addr())
//				if err != nil {
//					t.Fatal(err)
//				}
//				return s
//			},
//			Read: func(t *testing.T) []meter.Measurement { return srv.Measurements() },
//			// What the store cannot give back: it keeps no Kind, and times
//			// to the millisecond.
//			Normalize: func(m meter.Measurement) meter.Measurement {
//				m.Kind = 0
//				m.Time = m.Time.Truncate(time.Millisecond)
//				return m
//			},
//			Refused: &meter.Measurement{Name: "bad", Kind: meter.Gauge, Unit: "a unit far too long for the store", Time: at, Host: "h"},
//			Stall: func(t *testing.T) (release func()) {
//				srv.Hold()
//				return srv.Release
//			},
//		})
//	}
//
// Run checks, each rule in a subtest named after it, with a new sink from
// Harness.New for each:
//
//   - New: Harness.New gives a sink, which closes without having written.
//   - WriteReadBack: two batches written (see Batch) are read back, after
//     Harness.Normalize, in order if Harness.Ordered and in any order
//     otherwise; once after the first Write, once after the second and
//     Close.
//   - BatchNotRetained: after Write returns, the kit overwrites the batch
//     and the labels in it; what the store holds after Flush (for a
//     sink.Flusher) and Close is still what was written.
//   - EmptyBatch: Write of a nil and of an empty batch returns nil, and the
//     store holds nothing.
//   - CancelledContext: Write with a ctx already cancelled returns within
//     CancelGrace, with nil or an error that is not sink.Permanent.
//   - StalledStore (with Harness.Stall): Write to a stalled store, with a
//     ctx deadline StallDeadline away, returns by the deadline (within
//     CancelGrace) with an error that is not sink.Permanent, so the
//     publisher tries again.
//   - PartialError (with Harness.Refused): Write of good measurements with
//     two refused ones among them returns a *sink.PartialError whose
//     Rejected is strictly increasing, in range, and names exactly the
//     refused ones; the store holds the rest.
//   - PermanentError (with Harness.Refused): Write of refused measurements
//     only returns an error that is sink.Permanent (or a *sink.PartialError
//     naming them all), and the store holds nothing.
//   - WriteAfterClose: Write after Close returns an error wrapping
//     sink.ErrClosed.
//   - CloseTwice: Close, of a sink never written to and of one written to,
//     returns nil, and so does a second Close; nothing panics.
//   - NamedWriteTwice (for a sink with the named write, WriteFrom): the same
//     batch written twice under one sink.BatchID leaves one copy in the
//     store, or, with Harness.ID, copies with the same ids.
//   - NamedWriteFrom (the same): a batch written in two parts, the second
//     from position 2, is read back whole (with Harness.ID, with distinct
//     ids).
//   - Receipts (for a sink with the named write and the receipt lookup,
//     Stored): Stored says 0 for a batch never written, then 2 and 5 as the
//     batch is written in two parts with WriteFrom, and 0 for another
//     batch; a sink that keeps no receipts answers sink.ErrNoReceipts.
//   - Start (for a sink.Starter, such as sink/web's): Start returns nil,
//     and so does a second Start; the sink takes a Write and closes; Start
//     after Close fails with an error wrapping sink.ErrClosed.
//   - NoGoroutineLeak: every goroutine started since Run began has ended,
//     the sinks being closed and the rules' cleanups run. Goroutines that
//     ran before Run (a store the test started first) are not counted.
//
// A rule whose Harness hook is missing is skipped and says why. A failure
// says what the sink did and what the contract asks for. Every call of the
// sink is bounded: a Write that never returns fails its rule instead of
// hanging the test (and the goroutine check then reports it).
//
// Read is called after Write returned, and after Flush for a sink.Flusher;
// it must return what the store holds at that moment, so a store that
// takes writes asynchronously needs a Read that waits for them. The store
// need not be real: a test server in the sink's package that behaves like
// the store as far as the sink relies on it is the usual choice.
//
// Run is not for parallel tests (t.Parallel), since its goroutine check
// would see the other tests' goroutines.
//
// This package is what meterkit runs on its own sinks (see
// github.com/meterkit/meter/sink/riemann and sink/console).
package sinktest
