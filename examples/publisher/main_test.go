package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
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

// TestMain runs main itself when the test binary is started again by
// runMain, with the arguments after "--".
func TestMain(m *testing.M) {
	if os.Getenv("RUN_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{os.Args[0]}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runMain runs the binary's main with args and returns its exit code and
// output.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "RUN_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, stdout.String(), stderr.String()
}

func TestExitCodes(t *testing.T) {
	code, out, _ := runMain(t, "-config", "publisher.yaml", "-check")
	require.Equal(t, 0, code)
	require.Equal(t, "publisher.yaml: ok\n", out)

	code, _, _ = runMain(t, "-workers", "many")
	require.Equal(t, 2, code, "a bad flag")

	p := filepath.Join(t.TempDir(), "publisher.yaml")
	require.NoError(t, os.WriteFile(p, []byte("sinks:\n  - consol://\n"), 0o600))
	code, _, errOut := runMain(t, "-config", p, "-check")
	require.Equal(t, 2, code, "a bad config, checked")
	require.Contains(t, errOut, p+`:2: sinks[0]: unknown sink scheme "consol"`)
	code, _, _ = runMain(t, "-config", p, "-listen", "tcp://127.0.0.1:0")
	require.Equal(t, 2, code, "a bad config, run: before listening")

	code, _, errOut = runMain(t, "-sink", "127.0.0.1:5555", "-check")
	require.Equal(t, 2, code, "a sink URL without a scheme")
	require.Contains(t, errOut, "has no scheme")
}
