package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/meterkit/meter"
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
// factory decodes it into its own struct with Decode. The zero Config is empty:
// Decode leaves the target's defaults as they are.
type Config struct {
	raw json.RawMessage
}

// ConfigFromJSON wraps a JSON object as a Config.
func ConfigFromJSON(b []byte) Config { return Config{raw: bytes.Clone(b)} }

// ConfigFrom encodes v (a struct or a map) as a Config; handy in tests.
func ConfigFrom(v any) (Config, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Config{}, fmt.Errorf("driver: config: %w", err)
	}
	return Config{raw: b}, nil
}

// MarshalJSON and UnmarshalJSON let a Config sit inside a larger JSON file.
func (c Config) MarshalJSON() ([]byte, error) {
	if len(c.raw) == 0 {
		return []byte("{}"), nil
	}
	return c.raw, nil
}

// UnmarshalJSON keeps the raw object for Decode.
func (c *Config) UnmarshalJSON(b []byte) error {
	c.raw = bytes.Clone(b)
	return nil
}

// IsZero reports whether the config is empty.
func (c Config) IsZero() bool {
	return len(c.raw) == 0 || string(c.raw) == "null" || string(bytes.TrimSpace(c.raw)) == "{}"
}

// Decode decodes the configuration into v, a pointer to the driver's config
// struct (with `json` tags). Fields missing from the configuration keep the
// values v already holds, so set defaults before calling Decode. Unknown
// fields are an error: a typo in a config file must not pass silently.
func (c Config) Decode(v any) error {
	if c.IsZero() {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(c.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("driver: config: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("driver: config: trailing data after the object")
	}
	return nil
}

// Duration is a time.Duration that a configuration writes as a string, like
// "10s" or "1m30s", for the fields of a driver's config struct:
//
//	Timeout driver.Duration `json:"timeout,omitempty"`
type Duration time.Duration

// UnmarshalJSON parses a duration string ("10s", "1m30s", "250ms").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"10s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Registry maps driver names to factories. The package-level functions use
// a default registry; tests may make their own with NewRegistry.
type Registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{factories: map[string]Factory{}} }

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)

// Register makes a driver factory available by name. It panics if the name
// is malformed (lower case letters, digits, '.', '_', '-', starting with a
// letter, at most 63 bytes), if factory is nil, or if the name is taken:
// these are programming errors, found at start-up.
func (r *Registry) Register(name string, factory Factory) {
	if !nameRE.MatchString(name) {
		panic(fmt.Sprintf("driver: Register: malformed driver name %q", name))
	}
	if factory == nil {
		panic(fmt.Sprintf("driver: Register: nil factory for driver %q", name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.factories[name]; dup {
		panic(fmt.Sprintf("driver: Register called twice for driver %q", name))
	}
	r.factories[name] = factory
}

// Lookup returns the factory registered under name.
func (r *Registry) Lookup(name string) (Factory, error) {
	r.mu.RLock()
	f, ok := r.factories[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("driver: unknown driver %q (forgotten import?)", name)
	}
	return f, nil
}

// Open looks the driver up and makes it from cfg.
func (r *Registry) Open(name string, cfg Config) (Driver, error) {
	f, err := r.Lookup(name)
	if err != nil {
		return nil, err
	}
	d, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("driver %q: %w", name, err)
	}
	if d == nil {
		return nil, fmt.Errorf("driver %q: factory returned a nil driver", name)
	}
	return d, nil
}

// Drivers returns the registered names, sorted.
func (r *Registry) Drivers() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.factories))
	for n := range r.factories {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

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
