package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSampleConfigPassesCheck(t *testing.T) {
	cfg, err := load("publisher.yaml", flag.NewFlagSet("publisher", flag.ContinueOnError))
	require.NoError(t, err)
	require.Len(t, cfg.Sinks, 2)
	var out bytes.Buffer
	require.NoError(t, checkConfig(context.Background(), cfg, &out))
	require.Equal(t, "publisher.yaml: ok\n", out.String())
}

func TestCheckReportsEveryError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "publisher.yaml")
	require.NoError(t, os.WriteFile(p, []byte("keys: /nonexistent/keys\nsinks:\n  - riemman://h:5555\nstages:\n  - type: selekt\n"), 0o600))
	cfg, err := load(p, flag.NewFlagSet("publisher", flag.ContinueOnError))
	require.NoError(t, err)
	var out bytes.Buffer
	err = checkConfig(context.Background(), cfg, &out)
	require.ErrorContains(t, err, p+`:3: sinks[0]: unknown sink scheme "riemman"`)
	require.ErrorContains(t, err, p+`:5: stages[0].type: unknown stage "selekt"`)
	require.ErrorContains(t, err, "/nonexistent/keys")
	require.Empty(t, out.String())
}

func TestSinkFlagsReplaceTheFile(t *testing.T) {
	fs := flag.NewFlagSet("publisher", flag.ContinueOnError)
	var sinks sinkFlags
	fs.Var(&sinks, "sink", "")
	require.NoError(t, fs.Parse([]string{"-sink", "discard://"}))
	cfg, err := load("publisher.yaml", fs)
	require.NoError(t, err)
	require.Len(t, cfg.Sinks, 1)
	require.Equal(t, "discard://", cfg.Sinks[0].URL)
}
