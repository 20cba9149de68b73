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

// What -print-config prints for the sample is a config file that passes
// -check.
func TestPrintedSamplePassesCheck(t *testing.T) {
	code, stdout, stderr := runMain(t, "-config", "publisher.yaml", "-print-config")
	require.Equal(t, 0, code, stderr)
	p := filepath.Join(t.TempDir(), "printed.yaml")
	require.NoError(t, os.WriteFile(p, []byte(stdout), 0o600))
	code, out, stderr := runMain(t, "-config", p, "-check")
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	require.Equal(t, p+": ok\n", out)
}
