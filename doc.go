// Package meter is the root of meterkit, an SDK for metering: collecting
// measurements on many machines and delivering them, without loss, to the
// stores where they are used (Riemann, OpenStack Ceilometer and Gnocchi, or
// the console).
//
// This package holds only what every other part speaks: [Measurement], its
// [Kind] and its [Measurement.Validate]. The rest lives in subpackages, so a
// program pays only for what it imports.
//
// # The flow
//
//	host, PDU, hypervisor, your service
//	       |
//	  driver.Driver      Collect(ctx) once; the agent owns schedule, timeout, restart
//	       |
//	  agent.Agent        schedule per driver -> validate -> batch by size and age -> queue
//	       |
//	  transport.Sender   envelope{tenant, agent, seq, sent_at, measurements}; the reply is the ack
//	  (transport/nanomsg REQ/REP over tcp, ipc, inproc, tls+tcp)
//	       |
//	  publisher.Publisher  receive -> validate -> write to every sink -> ack the agent
//	       |
//	  sink.Sink          console (text or JSON lines), riemann, ceilometer, gnocchi
//
// An agent forgets a batch only when the publisher acknowledged it, and the
// publisher acknowledges only when every sink accepted the batch; a batch the
// publisher could not take is resent with backoff.
//
// # Writing a driver
//
// A driver is one method. The agent calls it on the driver's interval, with
// the collection timeout as ctx's deadline, and recovers it if it panics:
//
//	type queueDepth struct{ q *MyQueue }
//
//	func (d queueDepth) Collect(ctx context.Context) ([]meter.Measurement, error) {
//		return []meter.Measurement{{
//			Name: "queue.depth", Kind: meter.Gauge, Value: float64(d.q.Len()), // a plain count: no unit
//		}}, nil
//	}
//
// Host and Time may be left empty: the agent fills them. Register a factory
// with driver.Register to make it available by name in configuration files,
// and check it with driver/drivertest. docs/writing-a-driver.md walks through
// it step by step.
//
// # Agents
//
// agent.New takes a transport.Sender and options; Run blocks until its
// context ends:
//
//	s, _ := nanomsg.Dial([]string{"tcp://publisher:7711"})
//	a, _ := agent.New(s, agent.WithDriver("queue", queueDepth{q}, agent.Interval(10*time.Second)))
//	defer a.Close(context.Background()) // closes s too
//	err := a.Run(ctx)
//
// A service that measures itself can push measurements with Agent.Add.
//
// # Publishers and sinks
//
// publisher.New takes a transport.Receiver and one or more sinks:
//
//	r, _ := nanomsg.Listen("tcp://0.0.0.0:7711")
//	c, _ := console.New(os.Stdout)
//	p, _ := publisher.New(r, publisher.WithSink("console", c))
//	err := p.Run(ctx)
//
// A sink writes whole batches: Write(ctx, batch) and Close(ctx). Write is
// never called concurrently. It classifies failures with sink.Permanent
// (retrying cannot help) and *sink.PartialError (some measurements refused);
// any other error makes the publisher answer "retry" so that the agent
// resends. sink.Open makes a sink from a URL ("console://?format=json",
// "riemann://host:5555") for the sink packages a program imports.
//
// # Stages
//
// A stage processes measurements between collection and the store.
// stage.Stage has one method, Process(ctx, in, out), which appends its
// output to out, never modifies in, and drops and counts what it cannot
// process. The agent runs its stages (agent.WithStage) on each collection
// before batching and spooling; the publisher (publisher.WithStage) after
// de-duplication, before its spool and the sinks: what is spooled, replayed
// and counted by receipts is the stage output, and a replay never runs a
// stage again. stage.Chain composes stages into one; stage.Open makes the
// built-in ones from settings, in the same meter.Config drivers use, each
// limited to the meters it names with the patterns of Ceilometer's
// `meters:` ("disk.*", "!disk.*.latency"). stage/stagetest checks a stage.
//
//	stage       does                                     runs in           why there
//	select      keeps or drops by meter name             agent, publisher  no state
//	unit        scales units (B -> MiB), renames meters  agent, publisher  no state
//	arithmetic  a new meter from meters of one resource  agent, publisher  no state beyond one batch
//	levels      warning/alert/critical with hysteresis,  agent (default),  state per series, which
//	            labels meterkit.state, reports changes   publisher (see    must see the series whole
//	            as meterkit.state.change                 stage/levels)     and in order
//	rate        per-second gauge from a cumulative;      agent only        the previous point of each
//	            percent of a label or a number (cpu_util)                  series, seen whole
//	delta       the increase of a cumulative             agent only        as rate
//	aggregate   sum/mean/min/max/last/count per group    agent, publisher  windows by measurement
//	            over windows aligned to their length                       time: needs no order
//	stale       a host (tenant + agent) silent for       publisher only    only a publisher sees
//	            `after` reported stale, then fresh                         hosts fall silent
//
// Per-series state belongs in the agent: it is the only place that sees
// each of its series whole and in order. Ceilometer, whose transformers ran
// in its notification agents, had to partition them with a hash ring so
// that one agent saw all of a resource's samples, and then removed its
// transformers altogether. A publisher stages one agent's batches in
// sequence order, but after a failover to another publisher the state is
// that publisher's: stage/levels documents what that costs. A stateful
// stage's state (stage.Checkpointer) is kept with the batches holding its
// output, so a restart neither repeats nor loses what it reported.
//
// # Transports
//
// transport defines Sender and Receiver, the Envelope and its wire codec (a
// protobuf schema, transport/envelope.proto, that agents in other languages
// can speak). transport/nanomsg carries envelopes over the SP protocols of
// nanomsg with mangos; transport.Pipe connects an agent and a publisher in one
// process.
//
// # Delivery without loss
//
// agent.WithSpool keeps every batch in a crash-safe file until a publisher
// acknowledges it, so batches survive publisher outages, network cuts and
// agent restarts; sequence numbers never go back, and the publisher drops a
// batch it already has (by tenant, agent and sequence). publisher.WithSpool
// acknowledges once a batch is stored and delivers it to each sink from its
// own lane, retrying with backoff, so that one failing store stalls nothing
// else. examples/faults kills and cuts the real binaries and counts every
// measurement.
//
// # Security
//
// transport/nanomsg speaks mutual TLS (tls+tcp://). transport/seal seals
// every envelope with its tenant's 256-bit key (AES-256-GCM, the header
// authenticated), so that nobody without the key can inject, read, replay or
// alter a tenant's measurements; it wraps any transport.Sender and
// transport.Receiver (seal.NewSender, seal.NewReceiver). examples/meterctl
// manages the key file.
//
// # Lifecycle
//
// Contexts belong to one call and are never stored. Every Run(ctx) blocks
// until ctx ends, then finishes in-flight work within a bounded drain time
// and returns; no goroutine outlives it.
//
// A composer owns what its New is given: agent.New the transport.Sender,
// publisher.New the transport.Receiver and the sinks. Close(ctx) releases
// them all, is safe to call twice, and, called while Run runs, makes Run
// stop as if its context had ended and waits for it to return (within ctx)
// before closing anything, so nothing is written to or sent through a closed
// part. transport.Pipe joins an agent and a publisher in one process, and
// closing either end closes both: stop and Close the agent after the
// publisher has drained what it sent, then Close the publisher.
//
// # Options
//
// Constructors take their required arguments, then With… options, in one
// convention everywhere:
//
//   - An option is a function that may return an error (func(*config)
//     error); New applies them in order and returns the first error, which
//     names the option: "gnocchi: WithTimeout: negative duration -1s".
//   - One option type per constructor, so that an option given to the wrong
//     one does not compile: nanomsg has distinct dial and listen option
//     types, ceilometer has NotifierOption and V2Option (and Option for
//     the options that both of its sinks take).
//   - Zero means the package default for counts and durations
//     (riemann.WithTimeout(0) is riemann.DefaultTimeout), and the empty
//     string of an optional name or address means its default too.
//   - A negative count or duration is an error from New that names the
//     option.
//   - An "off" that matters is a named constant, never zero:
//     agent.NoStats, riemann.NoTTL.
//
// Command-line flags and URL parameters keep the meaning they have always
// had: -stats-every 0 still means never, and ttl=0 in a riemann:// URL
// still leaves the ttl out.
//
// # Errors
//
// Errors carry a package prefix and say what failed and where
// ("meter: invalid measurement: Labels[2].Key: duplicate key \"mode\"").
// Sentinels such as [ErrInvalid], transport.ErrRejected and transport.ErrClosed
// are matched with errors.Is. The agent and the publisher log through an
// injected *slog.Logger and count every drop, rejection and resend in Stats.
package meter
