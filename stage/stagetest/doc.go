// Package stagetest checks that a stage keeps the contract of stage.Stage.
// It is for stage authors; to run stages, see the agent and publisher
// packages.
//
// One call in a test of the stage's package runs the whole suite:
//
//	func TestConformance(t *testing.T) {
//		stagetest.Run(t, New, meter.Config{}) // on stagetest.Sample()
//		stagetest.Run(t, New, cfg, batch1, batch2, batch3)
//	}
//
// Run makes stages with the factory and the configuration given, runs the
// batches through them in order, and checks, each in a subtest named after
// it, that the stage leaves its input alone (the measurements, the label
// slices inside them, and the memory past their length), appends to out
// rather than replacing it, returns valid measurements that stay as they
// were after later batches, gives the same output for the same input on a
// fresh stage, returns promptly on a cancelled ctx, keeps Stats that add up,
// is found through wrappers, restores its state if it has some (and
// refuses bytes that are no state, keeping its own), ticks out valid
// measurements if it is a stage.Ticker (the same after a restore), closes
// cleanly if it is an io.Closer, and leaves no goroutine running. A failure
// message says what the stage did and what the contract asks for.
//
// Process gets a context with a stage.Origin, as in the publisher, so that
// a stage keeping state per agent (stale) is exercised.
//
// Give batches that the stage's configuration acts on (measurements its
// `meters` select, values that cross its thresholds): a stage that passes
// everything through unchanged passes every check. Run is not for parallel
// tests (t.Parallel), since its goroutine check would see the other tests'
// goroutines.
package stagetest
