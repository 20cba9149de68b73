package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestVersionFlag(t *testing.T) {
	code, stdout, _ := runMain(t, "-version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(stdout, "meter-agent github.com/meterkit/meter "), stdout)
	require.Contains(t, stdout, " go1.")
}

// -print-config prints the file's values with the flags' over them and
// secrets redacted; a bad log level is a config error (exit 2).
func TestPrintConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`publishers: {connect: [tcp://10.0.0.5:7711]}
log: {level: debug}
drivers:
  - type: snmp
    settings: {target: 10.0.0.9, community: private, objects: [{oid: 1.3.6.1.2.1.1.3.0, name: sys.uptime}]}
`), 0o600))
	code, stdout, stderr := runMain(t, "-config", file, "-print-config", "-connect", "tcp://10.0.0.6:7711", "-log-format", "json")
	require.Equal(t, 0, code, stderr)
	require.NotContains(t, stdout, "private")
	var v struct {
		Publishers struct {
			Connect []string `yaml:"connect"`
		} `yaml:"publishers"`
		Log struct {
			Level  string `yaml:"level"`
			Format string `yaml:"format"`
		} `yaml:"log"`
		Drivers []struct {
			Settings map[string]any `yaml:"settings"`
		} `yaml:"drivers"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(stdout), &v), stdout)
	require.Equal(t, []string{"tcp://10.0.0.6:7711"}, v.Publishers.Connect)
	require.Equal(t, "debug", v.Log.Level)
	require.Equal(t, "json", v.Log.Format)
	require.Equal(t, "REDACTED", v.Drivers[0].Settings["community"])

	code, _, stderr = runMain(t, "-config", file, "-print-config", "-log-level", "loud")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `-log-level: unknown log level "loud"`)
}

// What -print-config prints for the sample is a config file that passes
// -check.
func TestPrintedSamplePassesCheck(t *testing.T) {
	code, stdout, stderr := runMain(t, "-config", "agent.yaml", "-print-config")
	require.Equal(t, 0, code, stderr)
	p := filepath.Join(t.TempDir(), "printed.yaml")
	require.NoError(t, os.WriteFile(p, []byte(stdout), 0o600))
	code, out, stderr := runMain(t, "-config", p, "-check")
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	require.Equal(t, p+": ok\n", out)
}
