package yamlfile

import (
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"

	"github.com/meterkit/meter/internal/service"
)

// RedactedStages returns the stages as they stand in the file, as plain
// values with their secrets redacted (service.Redact), for -print-config.
func RedactedStages(stages []Stage) ([]any, error) {
	var out []any
	for _, st := range stages {
		var v any
		if err := st.Node.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", st.Key, err)
		}
		out = append(out, service.Redact(v))
	}
	return out, nil
}

// Write writes v to w as YAML indented by two spaces, the layout of the
// reference binaries' files, for -print-config.
func Write(w io.Writer, v any) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return enc.Close()
}
