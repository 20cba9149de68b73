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
// Every error names the file, the line and the key it is about
// ("stages.yaml:7: stages[2].warning: stage levels: ..."). The program must
// import the packages that register the stages it names.
package stagefile

import (
	"fmt"

	"github.com/meterkit/meter/internal/yamlfile"
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
	f, err := yamlfile.Parse(file, b)
	if err != nil {
		return nil, err
	}
	list, err := f.Stages(f.Root, "stages")
	if err != nil {
		return nil, err
	}
	specs := make([]Spec, 0, len(list))
	for _, sp := range list {
		specs = append(specs, Spec{Spec: sp.Spec, Line: sp.Line})
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
				yamlfile.CloseStage(s)
			}
			return nil, fmt.Errorf("%s:%d: stage %s: %w", file, sp.Line, sp.Name, err)
		}
		stages = append(stages, stage.Named(sp.Name, s))
	}
	return stage.Chain(stages...), nil
}

// Load reads, parses and opens the file at path. An error about a stage's
// setting names the setting's own line and key
// ("stages.yaml:9: stages[2].warning: stage levels: ...").
func Load(path string) (stage.Stage, error) {
	f, err := yamlfile.Read(path)
	if err != nil {
		return nil, err
	}
	list, err := f.Stages(f.Root, "stages")
	if err != nil {
		return nil, err
	}
	return f.OpenStages(list)
}
