// Package registry is the one registry behind driver.Registry and
// stage.Registry: names mapped to factories that make a T from its
// settings, filled at start-up by the packages that implement them.
package registry

import (
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/meterkit/meter"
)

// Registry maps names to factories of T. kind ("driver", "stage") prefixes
// its messages.
type Registry[T any] struct {
	kind      string
	mu        sync.RWMutex
	factories map[string]func(meter.Config) (T, error)
}

// New returns an empty registry of kind.
func New[T any](kind string) *Registry[T] {
	return &Registry[T]{kind: kind, factories: map[string]func(meter.Config) (T, error){}}
}

// validName reports whether name is a lower case letter followed by up to
// 62 lower case letters, digits, '_', '.' or '-' (no regexp: registering
// runs at start-up, in init functions).
func validName(name string) bool {
	if len(name) == 0 || len(name) > 63 || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for _, c := range []byte(name[1:]) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Register makes factory available by name. It panics if the name is
// malformed (lower case letters, digits, '.', '_', '-', starting with a
// letter, at most 63 bytes), if factory is nil, or if the name is taken:
// these are programming errors, found at start-up.
func (r *Registry[T]) Register(name string, factory func(meter.Config) (T, error)) {
	if !validName(name) {
		panic(fmt.Sprintf("%s: Register: malformed %s name %q", r.kind, r.kind, name))
	}
	if factory == nil {
		panic(fmt.Sprintf("%s: Register: nil factory for %s %q", r.kind, r.kind, name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.factories[name]; dup {
		panic(fmt.Sprintf("%s: Register called twice for %s %q", r.kind, r.kind, name))
	}
	r.factories[name] = factory
}

// Lookup returns the factory registered under name. An unknown name is an
// error that lists the names registered.
func (r *Registry[T]) Lookup(name string) (func(meter.Config) (T, error), error) {
	r.mu.RLock()
	f, ok := r.factories[name]
	r.mu.RUnlock()
	if !ok {
		list := "none"
		if known := r.Names(); len(known) > 0 {
			list = strings.Join(known, ", ")
		}
		return nil, fmt.Errorf("%s: unknown %s %q (forgotten import?); registered: %s", r.kind, r.kind, name, list)
	}
	return f, nil
}

// Open looks name up and makes a T from cfg. A factory's error, and a nil
// T, are errors naming it.
func (r *Registry[T]) Open(name string, cfg meter.Config) (T, error) {
	var zero T
	f, err := r.Lookup(name)
	if err != nil {
		return zero, err
	}
	v, err := f(cfg)
	if err != nil {
		return zero, fmt.Errorf("%s %q: %w", r.kind, name, err)
	}
	if any(v) == nil {
		return zero, fmt.Errorf("%s %q: factory returned a nil %s", r.kind, name, r.kind)
	}
	return v, nil
}

// Names returns the registered names, sorted.
func (r *Registry[T]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.factories))
	for n := range r.factories {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Make calls factory with cfg for a conformance kit (prefix names it in
// errors: "drivertest"), turning a panic, an error or a nil T into an error
// that says what to do.
func Make[T any](prefix, kind string, factory func(meter.Config) (T, error), cfg meter.Config) (v T, err error) {
	var zero T
	if factory == nil {
		return zero, fmt.Errorf("%s: the factory is nil", prefix)
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = zero, fmt.Errorf("%s: the factory panicked: %v\n%s", prefix, r, debug.Stack())
		}
	}()
	v, err = factory(cfg)
	switch {
	case err != nil:
		return zero, fmt.Errorf("%s: the factory failed with the config given to Run: %w", prefix, err)
	case any(v) == nil:
		return zero, fmt.Errorf("%s: the factory returned a nil %s and a nil error; return a %s or an error", prefix, kind, kind)
	}
	return v, nil
}
