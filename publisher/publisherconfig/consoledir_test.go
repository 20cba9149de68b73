package publisherconfig_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/publisher/publisherconfig"
	_ "github.com/meterkit/meter/sink/console"
)

// Open refuses a console:///path sink whose directory is missing, naming
// the file's line, the URL and the directory, and opens one whose
// directory exists without creating its file.
func TestOpenChecksTheConsoleDirectory(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	c, err := publisherconfig.Parse("publisher.yaml", []byte("sinks:\n  - console://"+filepath.Join(missing, "m.jsonl")+"\n  - console://\n"))
	require.NoError(t, err)
	_, err = c.Open(context.Background())
	require.ErrorContains(t, err, "publisher.yaml:2: sinks[0]: console://"+filepath.Join(missing, "m.jsonl")+": directory "+missing+" does not exist")

	c, err = publisherconfig.Parse("publisher.yaml", []byte("sinks:\n  - console://"+filepath.Join(dir, "m.jsonl")+"\n"))
	require.NoError(t, err)
	p, err := c.Open(context.Background())
	require.NoError(t, err)
	p.Close(context.Background())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "Open created the sink's file")
}
