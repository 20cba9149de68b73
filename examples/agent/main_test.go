package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	code, out, _ := runMain(t, "-config", "agent.yaml", "-check")
	require.Equal(t, 0, code)
	require.Equal(t, "agent.yaml: ok\n", out)

	code, _, errOut := runMain(t, "-no-such-flag")
	require.Equal(t, 2, code, "a bad flag")
	require.Contains(t, errOut, "no-such-flag")

	p := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(p, []byte("drivers:\n  - type: cpu\n    intervall: 5s\n"), 0o600))
	code, _, errOut = runMain(t, "-config", p, "-check")
	require.Equal(t, 2, code, "a bad config, checked")
	require.Contains(t, errOut, p+":3: drivers[0].intervall: unknown key")
	code, _, _ = runMain(t, "-config", p)
	require.Equal(t, 2, code, "a bad config, run")

	code, _, errOut = runMain(t, "-drivers", "cpu,nosuch", "-check")
	require.Equal(t, 2, code, "an unknown driver from -drivers")
	require.Contains(t, errOut, `unknown driver "nosuch" (registered: `)

	code, out, _ = runMain(t, "-list-drivers")
	require.Equal(t, 0, code)
	require.Contains(t, strings.Fields(out), "cpu")
	require.Contains(t, strings.Fields(out), "synthetic")
}
