package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSampleConfigPassesCheck(t *testing.T) {
	cfg, err := load("agent.yaml", flag.NewFlagSet("agent", flag.ContinueOnError))
	require.NoError(t, err)
	require.Len(t, cfg.Drivers, 7)
	var out bytes.Buffer
	require.NoError(t, checkConfig(cfg, &out))
	require.Equal(t, "agent.yaml: ok\n", out.String())
}

func TestCheckReportsEveryError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(p, []byte("publishers:\n  key_file: /nonexistent/key\n  tenant: acme\ndrivers:\n  - type: cpuu\n  - type: load\n"), 0o600))
	cfg, err := load(p, flag.NewFlagSet("agent", flag.ContinueOnError))
	require.NoError(t, err)
	var out bytes.Buffer
	err = checkConfig(cfg, &out)
	require.ErrorContains(t, err, p+`:5: drivers[0].type: unknown driver "cpuu"`)
	require.ErrorContains(t, err, "/nonexistent/key")
	require.Empty(t, out.String())
}

func TestFlagsReplaceTheFile(t *testing.T) {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.String("drivers", "", "")
	fs.String("connect", "", "")
	require.NoError(t, fs.Parse([]string{"-drivers", "uptime", "-connect", "tcp://10.1.1.1:7711"}))
	cfg, err := load("agent.yaml", fs)
	require.NoError(t, err)
	require.Len(t, cfg.Drivers, 1)
	require.Equal(t, "uptime", cfg.Drivers[0].Type)
	require.Equal(t, []string{"tcp://10.1.1.1:7711"}, cfg.Connect)
	var out bytes.Buffer
	require.NoError(t, checkConfig(cfg, &out))
}
