package stage

import (
	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/registry"
)

// Registry maps stage types to factories, as driver.Registry does for
// drivers. The package-level functions use a default registry that the
// built-in stages fill when imported; tests may make their own with
// NewRegistry.
type Registry struct{ r *registry.Registry[Stage] }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{registry.New[Stage]("stage")} }

// Register makes a stage factory available by name. It panics if the name
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

// Open looks the stage up and makes it from cfg.
func (r *Registry) Open(name string, cfg meter.Config) (Stage, error) { return r.r.Open(name, cfg) }

// Stages returns the registered names, sorted.
func (r *Registry) Stages() []string { return r.r.Names() }

var defaultRegistry = NewRegistry()

// Default returns the process-wide registry that Register fills.
func Default() *Registry { return defaultRegistry }

// Register registers a factory in the default registry; see Registry.Register.
func Register(name string, factory Factory) { defaultRegistry.Register(name, factory) }

// Lookup finds a factory in the default registry; see Registry.Lookup.
func Lookup(name string) (Factory, error) { return defaultRegistry.Lookup(name) }

// Open makes a stage from the default registry; see Registry.Open.
func Open(name string, cfg meter.Config) (Stage, error) { return defaultRegistry.Open(name, cfg) }

// Stages lists the default registry's names, sorted.
func Stages() []string { return defaultRegistry.Stages() }
