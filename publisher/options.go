package publisher

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/meterkit/meter/internal/option"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/stage"
)

// Option configures a Publisher. Options follow the package convention (see
// the root package's doc, Options): zero means the default for counts and
// durations, a negative one is an error from New naming the option, and an
// "off" that matters is a named constant (NoStats).
type Option func(*config) error

// setDefault is option.Set with the package's prefix on its error.
func setDefault[T int | time.Duration](dst *T, name string, v, def T) error {
	if err := option.Set(dst, name, v, def); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	return nil
}

type config struct {
	sinks       []namedSink
	workers     int
	writeLimit  time.Duration
	drain       time.Duration
	logger      *slog.Logger
	spoolDir    string
	spool       spoolConfig
	dedupWindow int
	dedupAge    time.Duration
	backoffMin  time.Duration
	backoffMax  time.Duration
	statsEvery  time.Duration
	stages      []stage.Stage
	id          string        // WithID (state.go)
	tickEvery   time.Duration // WithTickInterval (state.go)
}

type namedSink struct {
	name string
	s    sink.Sink
}

// Defaults, used where an option is not given.
const (
	DefaultWorkers      = 4
	DefaultWriteTimeout = 30 * time.Second
	DefaultDrainTimeout = 10 * time.Second
	DefaultBackoffMin   = 100 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
	// DefaultStatsInterval is how often the stats line is logged.
	DefaultStatsInterval = time.Minute
)

// NoStats, given to WithStatsInterval, turns the periodic stats line off.
const NoStats time.Duration = -1

// WithSink adds a sink. Every accepted batch is written to every sink; the
// agent is acknowledged only when all of them accepted it. The name appears
// in logs and errors.
func WithSink(name string, s sink.Sink) Option {
	return func(c *config) error {
		if name == "" || s == nil {
			return fmt.Errorf("publisher: WithSink needs a name and a non-nil sink (name %q)", name)
		}
		for _, o := range c.sinks {
			if o.name == name {
				return fmt.Errorf("publisher: sink %q added twice", name)
			}
		}
		c.sinks = append(c.sinks, namedSink{name, s})
		return nil
	}
}

// WithWorkers sets how many envelopes are worked on at once (0:
// DefaultWorkers, 4). Writes to one sink are never concurrent, whatever this
// number.
func WithWorkers(n int) Option {
	return func(c *config) error { return setDefault(&c.workers, "WithWorkers", n, DefaultWorkers) }
}

// WithWriteTimeout bounds one batch write to one sink (0:
// DefaultWriteTimeout, 30s). There is no "no limit": a store that never
// answers would hold its lane, and the agents, for ever.
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) error { return setDefault(&c.writeLimit, "WithWriteTimeout", d, DefaultWriteTimeout) }
}

// WithDrainTimeout bounds how long Run finishes envelopes in hand and
// drains the spool lanes after its context ends or Close is called (0:
// DefaultDrainTimeout, 10s).
func WithDrainTimeout(d time.Duration) Option {
	return func(c *config) error { return setDefault(&c.drain, "WithDrainTimeout", d, DefaultDrainTimeout) }
}

// WithLogger sets where the publisher logs (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) error { c.logger = l; return nil } }

// WithDedupWindow sets which accepted batches are remembered, by (tenant,
// agent, seq), so that one sent again is acknowledged again without reaching
// the sinks twice: an agent's last count seqs however old
// (DefaultDedupWindow when zero), and every seq accepted less than age ago
// however many (DefaultDedupAge when zero), up to 64 times count per agent.
// With WithSpool the window survives restarts.
//
// Batches come again when an acknowledgement was lost (the agent resends)
// and when a captured frame is replayed: with sealing (package
// transport/seal), a sealed envelope opens for as long as its sealing time
// is within the window of the receiver's clock either way, so age must be
// at least twice that window; the default covers seal's default window.
func WithDedupWindow(count int, age time.Duration) Option {
	return func(c *config) error {
		return errors.Join(setDefault(&c.dedupWindow, "WithDedupWindow count", count, DefaultDedupWindow),
			setDefault(&c.dedupAge, "WithDedupWindow age", age, DefaultDedupAge))
	}
}

// WithBackoff sets the delays between retries of a spooled batch whose sink
// failed: from min, doubling with jitter, up to max (0: DefaultBackoffMin,
// DefaultBackoffMax, 100ms to 30s).
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) error {
		if err := errors.Join(setDefault(&c.backoffMin, "WithBackoff min", min, DefaultBackoffMin),
			setDefault(&c.backoffMax, "WithBackoff max", max, DefaultBackoffMax)); err != nil {
			return err
		}
		if c.backoffMax < c.backoffMin {
			return fmt.Errorf("publisher: WithBackoff(%v, %v): max below min", c.backoffMin, c.backoffMax)
		}
		return nil
	}
}

// WithStatsInterval logs the counters every d at level Info (0:
// DefaultStatsInterval, one minute; NoStats: never).
func WithStatsInterval(d time.Duration) Option {
	return func(c *config) error {
		if d == NoStats {
			c.statsEvery = 0
			return nil
		}
		return setDefault(&c.statsEvery, "WithStatsInterval", d, DefaultStatsInterval)
	}
}

// WithStage adds stages that run, in the order given (and after those of
// earlier WithStage options), on each batch after validation and
// de-duplication and before the spool and the sinks: what is spooled,
// replayed, written and counted by receipts is their output. A batch the
// stages reduce to nothing is acknowledged OK without reaching the spool or
// the sinks, counted in Stats().FilteredEnvelopes, and a resend of it is
// still a duplicate. Workers run concurrently, but Process is never called
// concurrently: the stages see one batch at a time, in the order the
// batches arrive from all agents (per-series stages such as levels
// belong in the agent, which sees each series whole and in order). The
// publisher owns the stages: Close closes those that are io.Closers, after
// Run returned. A stage that returns an error is broken: the publisher logs
// it, counts it in Stats().StageErrors, and passes that batch on unstaged,
// so that nothing accepted is lost. A stage that keeps state (a
// stage.Checkpointer) needs WithSpool, where its state is committed with
// each batch: New refuses it without (see "Stage state and order" in the
// package doc).
func WithStage(stages ...stage.Stage) Option {
	return func(c *config) error {
		for i, s := range stages {
			if s == nil {
				return fmt.Errorf("publisher: WithStage: stage %d is nil", i)
			}
		}
		c.stages = append(c.stages, stages...)
		return nil
	}
}

// WithStages opens the stages that specs name in the default stage registry
// (see stage.Register and stage.OpenChain) and adds them as WithStage does.
// The program must import the packages that register them.
func WithStages(specs []stage.Spec) Option {
	return func(c *config) error {
		s, err := stage.OpenChain(specs)
		if err != nil {
			return fmt.Errorf("publisher: %w", err)
		}
		return WithStage(s)(c)
	}
}
