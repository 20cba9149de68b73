package stage

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/meterkit/meter"
)

// Registry maps stage types to factories, as driver.Registry does for
// drivers. The package-level functions use a default registry that the
// built-in stages fill when imported; tests may make their own with
// NewRegistry.
type Registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{factories: map[string]Factory{}} }

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)

// Register makes a stage factory available by name. It panics if the name
// is malformed (lower case letters, digits, '.', '_', '-', starting with a
// letter, at most 63 bytes), if factory is nil, or if the name is taken:
// these are programming errors, found at start-up.
func (r *Registry) Register(name string, factory Factory) {
	if !nameRE.MatchString(name) {
		panic(fmt.Sprintf("stage: Register: malformed stage name %q", name))
	}
	if factory == nil {
		panic(fmt.Sprintf("stage: Register: nil factory for stage %q", name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.factories[name]; dup {
		panic(fmt.Sprintf("stage: Register called twice for stage %q", name))
	}
	r.factories[name] = factory
}

// Lookup returns the factory registered under name. An unknown name is an
// error listing the names registered.
func (r *Registry) Lookup(name string) (Factory, error) {
	r.mu.RLock()
	f, ok := r.factories[name]
	r.mu.RUnlock()
	if !ok {
		known := r.Stages()
		list := "none"
		if len(known) > 0 {
			list = strings.Join(known, ", ")
		}
		return nil, fmt.Errorf("stage: unknown stage %q (forgotten import?); registered: %s", name, list)
	}
	return f, nil
}

// Open looks the stage up and makes it from cfg.
func (r *Registry) Open(name string, cfg meter.Config) (Stage, error) {
	f, err := r.Lookup(name)
	if err != nil {
		return nil, err
	}
	s, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("stage %q: %w", name, err)
	}
	if s == nil {
		return nil, fmt.Errorf("stage %q: factory returned a nil stage", name)
	}
	return s, nil
}

// Stages returns the registered names, sorted.
func (r *Registry) Stages() []string {
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

// Open makes a stage from the default registry; see Registry.Open.
func Open(name string, cfg meter.Config) (Stage, error) { return defaultRegistry.Open(name, cfg) }

// Stages lists the default registry's names, sorted.
func Stages() []string { return defaultRegistry.Stages() }
