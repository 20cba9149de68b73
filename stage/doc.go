// Package stage defines processing stages: what runs on measurements between
// collection and the store, in the agent before its spool and in the
// publisher before its own. A [Stage] has one method:
//
//	Process(ctx, in, out []meter.Measurement) ([]meter.Measurement, error)
//
// It appends its output to out and returns it, never modifies in nor the
// label slices inside it, drops and counts what it cannot process, and gives
// the same output for the same input and state. Most programs do not use
// this package directly: they import the built-in stages they want
// (stage/selectstage, stage/unit, stage/arithmetic, stage/levels,
// stage/rate, stage/delta, stage/aggregate register "select", "unit",
// "arithmetic", "levels", "rate", "delta" and "aggregate") and name them in
// configuration. Authors of new stages check their work with
// stage/stagetest.
//
// # Writing a stage
//
// A stage that keeps the measurements of one host only:
//
//	type onlyHost struct{ host string }
//
//	func (s onlyHost) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
//		for _, m := range in {
//			if m.Host == s.host {
//				out = append(out, m) // m is a copy: change it freely, but not m.Labels' elements
//			}
//		}
//		return out, nil
//	}
//
//	func init() {
//		stage.Register("onlyhost", func(cfg meter.Config) (stage.Stage, error) {
//			c := struct {
//				Host string `json:"host"`
//			}{}
//			if err := cfg.Decode(&c); err != nil {
//				return nil, fmt.Errorf("onlyhost: %w", err)
//			}
//			return onlyHost{c.Host}, nil
//		})
//	}
//
// To change a label, give the measurement a new label slice (copy, then
// change the copy): drivers share one slice between many measurements. A
// stage that derives a new meter appends it beside its input, unless told
// to drop the input.
//
// # Capabilities
//
// Extras are optional one-method interfaces, found by the composers with
// [As], which looks through wrappers as errors.As does ([Wrapper]):
//
//   - io.Closer: a stage that holds resources releases them in Close,
//     called once no batch will follow; a second Close does no harm.
//   - [StatsReporter]: Stats() returns the stage's [Stats] (in, out,
//     filtered, dropped, ...), for the composer's stats line; the agent
//     and the publisher report each stage's under its name
//     ([StatsByStage]) in their Stats and on /metrics.
//   - [Checkpointer] and [Restorer]: a stateful stage's state as bytes, out
//     and in. The agent commits the checkpoint of its chain in the spool
//     transaction of the batch that holds a collection's last output, and
//     restores it at start; the publisher commits it with each batch it
//     spools and that batch's de-duplication mark, restores it at start,
//     and restores the last one committed after a failure before the
//     commit, so that a resend is staged from the same state. A [Chain]
//     keys the states by the stages' names.
//   - [Ticker]: output without input (a window closing). The publisher
//     ticks its stages every second and sends what they make as a batch of
//     its own identity ("publisher/<id>"), spooled with their state; the
//     agent does not tick.
//   - [OrderSensitive]: a stage that needs each agent's batches in
//     sequence order; the publisher marks a batch that comes out of order
//     in its [Origin], and a chain skips such stages for it.
//   - [Namer]: the stage's name in a chain, given by [Named].
//   - [InPlacer]: the stage also works in a batch its caller owns, without
//     copying it (select, unit, levels); found by a type assertion on the
//     stage itself, not through wrappers. A [Chain] is always one: the agent
//     and the publisher stage their own buffer of valid measurements.
//
// # Composing
//
// [Chain] runs stages in order and is a Stage, with the capabilities of its
// stages. [Only] limits a stage to some meters, and [Meters] is the
// compiled form of a Ceilometer-style `meters:` list ("disk.*",
// "!disk.*.latency"), which every built-in stage takes as its `meters`
// setting.
//
// # Registry
//
// [Register] makes a stage type available by name, with settings in the
// same [meter.Config] drivers use; [Open] makes one; [Stages] lists them.
// Register panics on a malformed or duplicate name or a nil factory: these
// are programming errors. Opening a name nobody registered fails with
// `stage: unknown stage "x" (forgotten import?)` and the names that exist.
//
// # Cost
//
// Measured on a 2-core machine, once warm: select + unit + levels take
// about 31 ns and no allocation per measurement of a batch of 1,000 host
// measurements (BenchmarkHostChain in this package; BenchmarkAgentChain
// and BenchmarkPublisherChain in publisher are the chains of the benchmark
// below). On the whole path, agent to publisher over TCP
// (BenchmarkAgentToPublisherTCP in publisher, scripts/stages-throughput),
// that chain in the agent keeps 0.88-0.94 of the throughput without stages
// with 4 batches in flight and 1.03-1.11 with 1, and with a second select
// + unit in the publisher 0.82-0.87 and 0.90-0.93. Levels' label (meterkit.state,
// on every measurement it checks) takes 2 bytes on the wire in envelope
// version 2, which the agent writes to a publisher that reads it (package
// transport, Versions), and about 22 in version 1. Select hands on the
// names it keeps as the strings it already holds, so that the stages after
// it compare names by pointer, even in the publisher, whose names are
// fresh strings from each frame. Run a stage once, where it belongs:
// select early (in the agent, it saves the bytes of what it drops), levels
// in the agent.
package stage
