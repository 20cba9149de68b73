package stage

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/meterkit/meter"
)

// Spec is one stage of a configuration file's list: its type, its name in
// the chain, and its settings, written flat beside them:
//
//	[{"type": "select", "meters": ["cpu.*", "memory.*"]},
//	 {"type": "levels", "name": "cpu-levels", "meters": ["cpu.util"], "warning": 80}]
//
// (the same list in YAML, once converted to JSON). Name defaults to Type;
// the names of a list are unique, since a chain keys its stages' state by
// name. Settings are every other key, given to the stage's factory.
type Spec struct {
	Type     string
	Name     string
	Settings meter.Config
}

// UnmarshalJSON reads a Spec from a flat JSON object.
func (s *Spec) UnmarshalJSON(b []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return fmt.Errorf("stage: want an object like {\"type\": \"select\", \"meters\": [\"cpu.*\"]}, got %s", bytes.TrimSpace(b))
	}
	var sp Spec
	for key, dst := range map[string]*string{"type": &sp.Type, "name": &sp.Name} {
		if raw, ok := fields[key]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return fmt.Errorf("stage: %s: want a string, got %s", key, raw)
			}
			delete(fields, key)
		}
	}
	if sp.Type == "" {
		return fmt.Errorf("stage: type: required (one of the registered stages, such as \"select\")")
	}
	rest, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("stage %s: %w", sp.Type, err)
	}
	sp.Settings = meter.ConfigFromJSON(rest)
	*s = sp
	return nil
}

// MarshalJSON writes the Spec as a flat JSON object.
func (s Spec) MarshalJSON() ([]byte, error) {
	fields := map[string]json.RawMessage{}
	if !s.Settings.IsZero() {
		b, err := s.Settings.MarshalJSON()
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &fields); err != nil {
			return nil, fmt.Errorf("stage %s: settings: %w", s.Type, err)
		}
	}
	fields["type"], _ = json.Marshal(s.Type)
	if s.Name != "" && s.Name != s.Type {
		fields["name"], _ = json.Marshal(s.Name)
	}
	return json.Marshal(fields)
}

// OpenChain makes each stage of specs with the registry, names it, and
// chains them. A name used twice (a type used twice without names) is an
// error, as is anything Open refuses; the error says which stage.
func (r *Registry) OpenChain(specs []Spec) (Stage, error) {
	stages := make([]Stage, 0, len(specs))
	seen := map[string]int{}
	for i, sp := range specs {
		name := sp.Name
		if name == "" {
			name = sp.Type
		}
		if j, dup := seen[name]; dup {
			return nil, fmt.Errorf("stage: stages %d and %d are both named %q: give each a name of its own", j+1, i+1, name)
		}
		seen[name] = i
		s, err := r.Open(sp.Type, sp.Settings)
		if err != nil {
			return nil, fmt.Errorf("stage %d (%s): %w", i+1, name, err)
		}
		stages = append(stages, Named(name, s))
	}
	return Chain(stages...), nil
}

// OpenChain makes a chain from the default registry; see Registry.OpenChain.
func OpenChain(specs []Spec) (Stage, error) { return defaultRegistry.OpenChain(specs) }
