// Package stagefile reads a chain of stages from a YAML file: the -stages
// file of the reference agent and publisher, and the stages: list that their
// configuration files embed unchanged.
//
// The file is a list; each item names a registered stage by type, may give
// it a name (unique in the list, since the chain keys stage state by name;
// the type by default), and carries the stage's own settings beside them:
//
//	# stages.yaml
//	- type: select
//	  meters: ["cpu.*", "memory.*", "!memory.free"]
//	- type: unit
//	  meters: ["memory.*"]
//	  from: B
//	  to: MiB
//	- type: levels
//	  name: cpu-levels
//	  meters: ["cpu.util"]
//	  warning: 80
//
// Every error names the file and the line of the stage it is about
// ("stages.yaml:7: stage levels: warning: want a number"). The program must
// import the packages that register the stages it names.
package stagefile

import (
	"encoding/json"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/meterkit/meter/stage"
)

// Spec is a stage of the file with the line it starts on.
type Spec struct {
	stage.Spec
	Line int
}

// Parse reads the list in b; file names it in errors. It checks the shape
// of the list and that names are unique, not the settings (Open does).
func Parse(file string, b []byte) ([]Spec, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // an empty file: no stages
	}
	list := doc.Content[0]
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d: want a list of stages (- type: select ...), got a %s", file, list.Line, kind(list))
	}
	specs := make([]Spec, 0, len(list.Content))
	seen := map[string]int{}
	for _, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: want a stage (type: and its settings), got a %s", file, item.Line, kind(item))
		}
		var v map[string]any
		if err := item.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, item.Line, err)
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, item.Line, err)
		}
		var sp stage.Spec
		if err := json.Unmarshal(raw, &sp); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, item.Line, err)
		}
		if sp.Name == "" {
			sp.Name = sp.Type
		}
		if line, dup := seen[sp.Name]; dup {
			return nil, fmt.Errorf("%s:%d: a stage named %q is already at line %d: give each a name of its own", file, item.Line, sp.Name, line)
		}
		seen[sp.Name] = item.Line
		specs = append(specs, Spec{Spec: sp, Line: item.Line})
	}
	return specs, nil
}

// Open makes one stage of specs, in order, from the default stage registry.
// An error names the file, the line and the stage.
func Open(file string, specs []Spec) (stage.Stage, error) {
	stages := make([]stage.Stage, 0, len(specs))
	for _, sp := range specs {
		s, err := stage.Open(sp.Type, sp.Settings)
		if err != nil {
			for _, s := range stages {
				closeStage(s)
			}
			return nil, fmt.Errorf("%s:%d: stage %s: %w", file, sp.Line, sp.Name, err)
		}
		stages = append(stages, stage.Named(sp.Name, s))
	}
	return stage.Chain(stages...), nil
}

// Load reads, parses and opens the file at path.
func Load(path string) (stage.Stage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	specs, err := Parse(path, b)
	if err != nil {
		return nil, err
	}
	return Open(path, specs)
}

func closeStage(s stage.Stage) {
	if c, ok := stage.As[interface{ Close() error }](s); ok {
		_ = c.Close()
	}
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar " + n.Value
	}
	return "document"
}
