package driver

import (
	"context"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/registry"
)

// Driver collects measurements from one source. Collect is the only method
// an author must write: the agent owns the schedule, the timeout (as ctx's
// deadline), panic recovery and restarts.
//
// Collect returns what it measured. It may return measurements together with
// an error: the agent publishes the measurements and logs the error. It must
// return soon after ctx is done. The agent never calls Collect concurrently
// on one Driver value, and never after Close (if the driver is an io.Closer).
// The agent fills Host and Time where a measurement leaves them empty.
type Driver interface {
	Collect(ctx context.Context) ([]meter.Measurement, error)
}

// Func adapts an ordinary function to the Driver interface.
type Func func(ctx context.Context) ([]meter.Measurement, error)

// Collect calls f(ctx).
func (f Func) Collect(ctx context.Context) ([]meter.Measurement, error) { return f(ctx) }

// Factory makes a Driver from its configuration. It should check the
// configuration and fail with a clear error rather than fail later in Collect.
type Factory func(cfg Config) (Driver, error)

// Config is a driver's own configuration, kept undecoded until the driver's
// factory decodes it into its own struct with Decode. It is meter.Config,
// the one config type of drivers and stages; see there.
type Config = meter.Config

// ConfigFromJSON wraps a JSON object as a Config; see meter.ConfigFromJSON.
func ConfigFromJSON(b []byte) Config { return meter.ConfigFromJSON(b) }

// ConfigFrom encodes v (a struct or a map) as a Config; see meter.ConfigFrom.
func ConfigFrom(v any) (Config, error) { return meter.ConfigFrom(v) }

// Duration is a time.Duration that a configuration writes as a string, like
// "10s" or "1m30s", for the fields of a driver's config struct:
//
//	Timeout driver.Duration `json:"timeout,omitempty"`
//
// It is meter.Duration.
type Duration = meter.Duration

// Registry maps driver names to factories. The package-level functions use
// a default registry; tests may make their own with NewRegistry.
type Registry struct{ r *registry.Registry[Driver] }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{registry.New[Driver]("driver")} }

// Register makes a driver factory available by name. It panics if the name
// is malformed (lower case letters, digits, '.', '_', '-', starting with a
// letter, at most 63 bytes), if factory is nil, or if the name is taken:
// these are programming errors, found at start-up.
func (r *Registry) Register(name string, factory Factory) { r.r.Register(name, factory) }

// Lookup returns the factory registered under name. An unknown name is an
// error listing the names registered.
func (r *Registry) Lookup(name string) (Factory, error) {
	f, err := r.r.Lookup(name)
	return Factory(f), err
}

// Open looks the driver up and makes it from cfg.
func (r *Registry) Open(name string, cfg Config) (Driver, error) { return r.r.Open(name, cfg) }

// Drivers returns the registered names, sorted.
func (r *Registry) Drivers() []string { return r.r.Names() }

var defaultRegistry = NewRegistry()

// Default returns the process-wide registry that Register fills.
func Default() *Registry { return defaultRegistry }

// Register registers a factory in the default registry; see Registry.Register.
func Register(name string, factory Factory) { defaultRegistry.Register(name, factory) }

// Lookup finds a factory in the default registry; see Registry.Lookup.
func Lookup(name string) (Factory, error) { return defaultRegistry.Lookup(name) }

// Open makes a driver from the default registry; see Registry.Open.
func Open(name string, cfg Config) (Driver, error) { return defaultRegistry.Open(name, cfg) }

// Drivers lists the default registry's names, sorted.
func Drivers() []string { return defaultRegistry.Drivers() }
