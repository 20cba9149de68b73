package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersionFlag(t *testing.T) {
	code, stdout, _ := runMain(t, "-version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(stdout, "meter-publisher github.com/meterkit/meter "), stdout)
}

func TestPrintConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "publisher.yaml")
	require.NoError(t, os.WriteFile(file, []byte("sinks:\n  - name: bus\n    url: ceilometer+amqp://meter:hunter2@rabbit:5672/\n"), 0o600))
	code, stdout, stderr := runMain(t, "-config", file, "-print-config", "-listen", "tcp://127.0.0.1:7799")
	require.Equal(t, 0, code, stderr)
	require.NotContains(t, stdout, "hunter2")
	require.Contains(t, stdout, "listen: tcp://127.0.0.1:7799\n")
	require.Contains(t, stdout, "url: ceilometer+amqp://meter:REDACTED@rabbit:5672/\n")
}
