package agent

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/internal/spool"
)

// Option configures an Agent.
type Option func(*config) error

// DriverOption configures how the agent runs one driver.
type DriverOption func(*schedule)

type schedule struct {
	name     string
	d        driver.Driver
	interval time.Duration
	timeout  time.Duration
}

type config struct {
	drivers      []schedule
	tenant       string
	id           string
	host         string
	batchSize    int
	batchAge     time.Duration
	queueBatches int
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
}

// Defaults, used where an option is not given.
const (
	DefaultInterval     = 10 * time.Second
	DefaultBatchSize    = 1000
	DefaultBatchAge     = time.Second
	DefaultQueueBatches = 1024
	DefaultJitter       = 0.1
	DefaultSendTimeout  = 30 * time.Second
	DefaultDrainTimeout = 5 * time.Second
)

// WithDriver adds a driver to run on its own schedule. The name appears in
// logs and counters and must be unique within the agent.
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
		s := schedule{name: name, d: d, interval: DefaultInterval}
		for _, o := range opts {
			o(&s)
		}
		if s.interval <= 0 {
			return fmt.Errorf("agent: driver %q: interval must be positive, got %v", name, s.interval)
		}
		if s.timeout <= 0 || s.timeout > s.interval {
			s.timeout = s.interval
		}
		c.drivers = append(c.drivers, s)
		return nil
	}
}

// Interval sets how often the driver is collected (default 10s).
func Interval(d time.Duration) DriverOption { return func(s *schedule) { s.interval = d } }

// Timeout sets the deadline of one collection (default and maximum: the interval).
func Timeout(d time.Duration) DriverOption { return func(s *schedule) { s.timeout = d } }

// WithTenant sets the tenant id written into every envelope.
func WithTenant(id string) Option { return func(c *config) error { c.tenant = id; return nil } }

// WithID sets the agent id written into every envelope (default: the host name).
func WithID(id string) Option { return func(c *config) error { c.id = id; return nil } }

// WithHost sets the host given to measurements that have none (default: os.Hostname).
func WithHost(host string) Option { return func(c *config) error { c.host = host; return nil } }

// WithBatch sets when a batch is sent: when it holds size measurements or
// when its oldest measurement is age old, whichever comes first.
func WithBatch(size int, age time.Duration) Option {
	return func(c *config) error {
		if size <= 0 || age <= 0 {
			return fmt.Errorf("agent: WithBatch(%d, %v): both must be positive", size, age)
		}
		c.batchSize, c.batchAge = size, age
		return nil
	}
}

// WithQueue bounds how many batches wait in memory for the publisher. When
// the queue is full the oldest batch is dropped, counted and logged.
func WithQueue(batches int) Option {
	return func(c *config) error {
		if batches <= 0 {
			return fmt.Errorf("agent: WithQueue(%d): must be positive", batches)
		}
		c.queueBatches = batches
		return nil
	}
}

// WithInFlight sets how many batches may await their acknowledgement at once
// (default 1, which keeps batches in order).
func WithInFlight(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("agent: WithInFlight(%d): must be positive", n)
		}
		c.inFlight = n
		return nil
	}
}

// WithJitter spreads each driver's collections by up to this fraction of its
// interval (default 0.1), so that many agents do not collect in step.
func WithJitter(fraction float64) Option {
	return func(c *config) error {
		if fraction < 0 || fraction > 1 {
			return fmt.Errorf("agent: WithJitter(%v): want 0 to 1", fraction)
		}
		c.jitter = fraction
		return nil
	}
}

// WithSendTimeout bounds one send and its acknowledgement (default 30s).
func WithSendTimeout(d time.Duration) Option {
	return func(c *config) error { c.sendTimeout = d; return nil }
}

// WithBackoff sets the delays between resends of a batch the publisher did
// not accept: from min, doubling, up to max (default 100ms to 30s).
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) error {
		if min <= 0 || max < min {
			return fmt.Errorf("agent: WithBackoff(%v, %v): want 0 < min <= max", min, max)
		}
		c.backoffMin, c.backoffMax = min, max
		return nil
	}
}

// WithDrainTimeout bounds how long Run keeps sending queued batches after its
// context ends (default 5s).
func WithDrainTimeout(d time.Duration) Option {
	return func(c *config) error { c.drain = d; return nil }
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

// WithStatsInterval logs the counters every d at level Info (default one
// minute; 0 turns it off).
func WithStatsInterval(d time.Duration) Option {
	return func(c *config) error { c.statsEvery = d; return nil }
}
