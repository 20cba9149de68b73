package yamlfile

import (
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// StagesInEffect returns the stages a configuration runs, as
// RedactedStages does: those listed inline in f, or, when stagesFile is
// given (stages_file:, -stages), those the file holds, read now; for
// -print-config, whose output, saved as a config file, must run the same
// stages.
func StagesInEffect(f *File, inline []Stage, stagesFile string) ([]any, error) {
	specs, sf, err := StageSpecs(f, inline, stagesFile)
	if err != nil {
		return nil, err
	}
	out, err := RedactedStages(specs)
	if err != nil && sf != nil {
		return nil, fmt.Errorf("%s: %w", sf.Name, err)
	}
	return out, err
}

// WriteConfig writes v, the printed layout of a config file, as Write
// does, followed by the key stages: with the stages in effect
// (StagesInEffect), when there are any, under a comment naming the stage
// file they were read from; for -print-config.
func WriteConfig(w io.Writer, v any, f *File, inline []Stage, stagesFile string) error {
	stages, err := StagesInEffect(f, inline, stagesFile)
	if err != nil {
		return err
	}
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return err
	}
	if len(stages) > 0 {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("yamlfile: a config prints as a mapping, not a %v", n.Kind)
		}
		var key, value yaml.Node
		key.SetString("stages")
		if stagesFile != "" {
			key.HeadComment = "stages read from " + stagesFile
		}
		if err := value.Encode(stages); err != nil {
			return err
		}
		n.Content = append(n.Content, &key, &value)
	}
	return Write(w, &n)
}
