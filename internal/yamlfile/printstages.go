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

// WriteNoted is Write with a comment line above some of the top-level keys
// of v (notes, by key): where a printed value came from, say. A key v does
// not print gets no note.
func WriteNoted(w io.Writer, v any, notes map[string]string) error {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return err
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if note, ok := notes[n.Content[i].Value]; ok {
				n.Content[i].HeadComment = note
			}
		}
	}
	return Write(w, &n)
}
