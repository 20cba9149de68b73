package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/internal/option"
	"github.com/meterkit/meter/internal/spool"
	"github.com/meterkit/meter/stage"
)

// Option configures an Agent. Options follow the package convention (see
// the root package's doc, Options): zero means the default for counts and
// durations, a negative one is an error from New naming the option, and an
// "off" that matters is a named constant (NoStats).
type Option func(*config) error

// DriverOption configures how the agent runs one driver.
type DriverOption func(*schedule) error

type schedule struct {
	name     string
	d        driver.Driver
	interval time.Duration
	timeout  time.Duration
	stop     <-chan struct{} // closed by Reconfigure: stop after the collection in hand; nil: never
}

type config struct {
	drivers      []schedule
	tenant       string
	id           string
	host         string
	batchSize    int
	batchAge     time.Duration
	queueBatches int
	queueBytes   int
	inFlight     int
	jitter       float64
	sendTimeout  time.Duration
	backoffMin   time.Duration
	backoffMax   time.Duration
	drain        time.Duration
	logger       *slog.Logger
	spoolDir     string
	spool        spool.Config
	statsEvery   time.Duration
	stages       []stage.Stage
}

// Defaults, used where an option is not given.
const (
	DefaultInterval     = 10 * time.Second
	DefaultBatchSize    = 1000
	DefaultBatchAge     = time.Second
	DefaultQueueBatches = 1024
	// DefaultQueueBytes bounds the memory of the batches the in-memory
	// queue holds (WithQueueBytes).
	DefaultQueueBytes   = 32 << 20
	DefaultJitter       = 0.1
	DefaultSendTimeout  = 30 * time.Second
	DefaultDrainTimeout = 5 * time.Second
	DefaultBackoffMin   = 100 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
	// DefaultStatsInterval is how often the stats line is logged.
	DefaultStatsInterval = time.Minute
)

// WithDriver adds a driver to run on its own schedule. The name appears in
// logs and counters and must be unique within the agent. A driver.Pusher is
// run once and pushes instead (see the package doc); Interval and Timeout
// do not apply to it.
func WithDriver(name string, d driver.Driver, opts ...DriverOption) Option {
	return func(c *config) error {
		if name == "" || d == nil {
			return fmt.Errorf("agent: WithDriver needs a name and a non-nil driver (name %q)", name)
		}
		for _, s := range c.drivers {
			if s.name == name {
				return fmt.Errorf("agent: driver %q added twice", name)
			}
		}
		s := schedule{name: name, d: d}
		for _, o := range opts {
			if err := o(&s); err != nil {
				return fmt.Errorf("agent: driver %q: %w", name, err)
			}
		}
		if s.interval == 0 {
			s.interval = DefaultInterval
		}
		if s.timeout == 0 || s.timeout > s.interval {
			s.timeout = s.interval
		}
		c.drivers = append(c.drivers, s)
		return nil
	}
}

// Interval sets how often the driver is collected (0: DefaultInterval, 10s).
func Interval(d time.Duration) DriverOption {
	return func(s *schedule) error { s.interval = d; return option.Check("Interval", d) }
}

// Timeout sets the deadline of one collection (0, and the maximum: the
// interval).
func Timeout(d time.Duration) DriverOption {
	return func(s *schedule) error { s.timeout = d; return option.Check("Timeout", d) }
}

// setDefault is option.Set with the package's prefix on its error.
func setDefault[T int | time.Duration](dst *T, name string, v, def T) error {
	if err := option.Set(dst, name, v, def); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// WithTenant sets the tenant id written into every envelope.
func WithTenant(id string) Option { return func(c *config) error { c.tenant = id; return nil } }

// WithID sets the agent id written into every envelope (default: the host name).
func WithID(id string) Option { return func(c *config) error { c.id = id; return nil } }

// WithHost sets the host given to measurements that have none (default: os.Hostname).
func WithHost(host string) Option { return func(c *config) error { c.host = host; return nil } }

// WithBatch sets when a batch is sent: when it holds size measurements or
// when its oldest measurement is age old, whichever comes first (0:
// DefaultBatchSize, DefaultBatchAge).
func WithBatch(size int, age time.Duration) Option {
	return func(c *config) error {
		return errors.Join(setDefault(&c.batchSize, "WithBatch size", size, DefaultBatchSize),
			setDefault(&c.batchAge, "WithBatch age", age, DefaultBatchAge))
	}
}

// WithQueue bounds how many batches wait in memory for the publisher (0:
// DefaultQueueBatches). When the queue is full the oldest batch is dropped,
// counted and logged.
func WithQueue(batches int) Option {
	return func(c *config) error { return setDefault(&c.queueBatches, "WithQueue", batches, DefaultQueueBatches) }
}

// WithQueueBytes bounds the memory the in-memory queue's batches take, in
// their wire encoding, the batches being sent included (0:
// DefaultQueueBytes, 32 MiB). A driver's collection that would exceed it
// waits, up to the driver's interval, for the publisher to acknowledge
// batches; then the oldest queued batches are dropped, counted and logged.
// It does not apply to the disk spool (WithSpool), bounded by SpoolMaxBytes.
func WithQueueBytes(n int) Option {
	return func(c *config) error { return setDefault(&c.queueBytes, "WithQueueBytes", n, DefaultQueueBytes) }
}

// WithInFlight sets how many batches may await their acknowledgement at once
// (0: 1, which keeps batches in order).
func WithInFlight(n int) Option {
	return func(c *config) error { return setDefault(&c.inFlight, "WithInFlight", n, 1) }
}

// WithJitter offsets the agent's collections by a random time of up to this
// fraction of its shortest driver interval, at most a second (default 0.1),
// so that many agents do not collect in step. The offset is drawn once per
// Run: one agent's drivers keep collecting together, each on its interval,
// woken by one timer. A fraction is neither a count nor a duration: 0 is no
// jitter.
func WithJitter(fraction float64) Option {
	return func(c *config) error {
		if fraction < 0 || fraction > 1 {
			return fmt.Errorf("agent: WithJitter(%v): want 0 to 1", fraction)
		}
		c.jitter = fraction
		return nil
	}
}

// WithSendTimeout bounds one send and its acknowledgement (0:
// DefaultSendTimeout, 30s).
func WithSendTimeout(d time.Duration) Option {
	return func(c *config) error { return setDefault(&c.sendTimeout, "WithSendTimeout", d, DefaultSendTimeout) }
}

// WithBackoff sets the delays between resends of a batch the publisher did
// not accept: from min, doubling, up to max (0: DefaultBackoffMin,
// DefaultBackoffMax, 100ms to 30s).
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) error {
		if err := errors.Join(setDefault(&c.backoffMin, "WithBackoff min", min, DefaultBackoffMin),
			setDefault(&c.backoffMax, "WithBackoff max", max, DefaultBackoffMax)); err != nil {
			return err
		}
		if c.backoffMax < c.backoffMin {
			return fmt.Errorf("agent: WithBackoff(%v, %v): max below min", c.backoffMin, c.backoffMax)
		}
		return nil
	}
}

// WithDrainTimeout bounds how long Run keeps sending queued batches after its
// context ends (0: DefaultDrainTimeout, 5s).
func WithDrainTimeout(d time.Duration) Option {
	return func(c *config) error { return setDefault(&c.drain, "WithDrainTimeout", d, DefaultDrainTimeout) }
}

// WithLogger sets where the agent logs (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) error { c.logger = l; return nil } }

// WithNamedDriver opens the driver registered under name in the default
// driver registry (see driver.Register) with cfg, and adds it as WithDriver
// does. The program must import the package that registers it.
func WithNamedDriver(name string, cfg driver.Config, opts ...DriverOption) Option {
	return func(c *config) error {
		d, err := driver.Open(name, cfg)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		return WithDriver(name, d, opts...)(c)
	}
}

// NoStats, given to WithStatsInterval, turns the periodic stats line off.
const NoStats time.Duration = -1

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
// earlier WithStage options), on each collection and on each Add, before the
// measurements are batched and spooled: what is spooled, sent and counted is
// their output. The agent gives them each series whole and in order, from
// one goroutine at a time, which is what per-series stages (rate, delta,
// levels) need. The agent owns the stages: Close closes those that are
// io.Closers. A stage that returns an error is broken: the agent logs it,
// counts it in Stats().StageErrors, and passes that collection on unstaged,
// so that nothing accepted is lost.
func WithStage(stages ...stage.Stage) Option {
	return func(c *config) error {
		for i, s := range stages {
			if s == nil {
				return fmt.Errorf("agent: WithStage: stage %d is nil", i)
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
			return fmt.Errorf("agent: %w", err)
		}
		return WithStage(s)(c)
	}
}
