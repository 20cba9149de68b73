package yamlfile

import (
	"bytes"
	"fmt"

	"github.com/meterkit/meter/stage"
)

// Reloading a configuration file: the stages that did not change keep
// their state, the others start fresh.

// StageSpecs returns the stages of a config file, as OpenStageList opens
// them: those listed inline in f, or those of stagesFile; and the file
// they come from, for errors.
func StageSpecs(f *File, inline []Stage, stagesFile string) ([]Stage, *File, error) {
	if stagesFile == "" {
		return inline, f, nil
	}
	sf, err := Read(stagesFile)
	if err != nil {
		return nil, nil, fmt.Errorf("stages_file: %w", err)
	}
	specs, err := sf.Stages(sf.Root, "stages")
	if err != nil {
		return nil, nil, err
	}
	return specs, sf, nil
}

// SameStages reports whether two stage lists are the same: the same
// stages, types, names and settings, in the same order.
func SameStages(a, b []Stage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameSpec(a[i].Spec, b[i].Spec) {
			return false
		}
	}
	return true
}

func sameSpec(a, b stage.Spec) bool {
	return a.Type == b.Type && a.Name == b.Name && SameConfig(a.Settings, b.Settings)
}

// SameConfig reports whether two settings are the same, as JSON.
func SameConfig(a, b interface{ MarshalJSON() ([]byte, error) }) bool {
	ja, erra := a.MarshalJSON()
	jb, errb := b.MarshalJSON()
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}

// ReopenStages opens the stages of next, a reloaded list, for a running
// program whose stages were opened from prev: a stage of next whose name is
// in prev with another type or other settings starts fresh when the chain
// is given the running chain's state (stage.Restorer), where the others get
// the state of the stage of their name. It returns nil for no stages.
func (f *File) ReopenStages(prev, next []Stage) (stage.Stage, error) {
	if len(next) == 0 {
		return nil, nil
	}
	was := map[string]stage.Spec{}
	for _, s := range prev {
		was[s.Name] = s.Spec
	}
	fresh := map[string]bool{}
	for _, s := range next {
		if old, ok := was[s.Name]; ok && !sameSpec(old, s.Spec) {
			fresh[s.Name] = true
		}
	}
	return f.openStages(next, fresh)
}

// freshStage decorates a stage whose settings changed in a reload: the
// first Restore, the running chain's state given to the new one, is
// ignored; later ones reach the stage.
type freshStage struct {
	stage.Stage
	skipped bool
}

func (s *freshStage) Unwrap() stage.Stage { return s.Stage }

func (s *freshStage) Restore(b []byte) error {
	if !s.skipped {
		s.skipped = true
		return nil
	}
	if r, ok := stage.As[stage.Restorer](s.Stage); ok {
		return r.Restore(b)
	}
	return nil
}
