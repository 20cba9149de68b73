//go:build unix

package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// -check stats a console:///path sink's directory, which the sink does not
// create: missing or not writable, it is a config error (exit 2) naming
// the sink's URL and the directory; writable, the check passes and the
// file is still not created (the sink creates it on its first write).
func TestCheckConsoleDirectory(t *testing.T) {
	dir := t.TempDir()

	missing := filepath.Join(dir, "missing")
	sinkURL := "console://" + filepath.Join(missing, "m.jsonl") + "?format=json"
	code, stdout, stderr := runMain(t, "-sink", sinkURL, "-check")
	require.Equal(t, 2, code, stderr)
	require.Empty(t, stdout)
	require.Contains(t, stderr, sinkURL+": directory "+missing+" does not exist")

	// In a config file, the error names the URL too, not only its key.
	cfg := filepath.Join(dir, "publisher.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("sinks:\n  - name: file\n    url: "+sinkURL+"\n"), 0o600))
	code, _, stderr = runMain(t, "-config", cfg, "-check")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, cfg+":3: sinks[0].url: "+sinkURL+": directory "+missing+" does not exist")

	notDir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	code, _, stderr = runMain(t, "-sink", "console://"+filepath.Join(notDir, "m.jsonl"), "-check")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, notDir+" is not a directory")

	out := filepath.Join(dir, "out")
	require.NoError(t, os.Mkdir(out, 0o755))
	code, stdout, stderr = runMain(t, "-sink", "console://"+filepath.Join(out, "m.jsonl"), "-check")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "flags: ok\n", stdout)
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	require.Empty(t, entries, "-check created the sink's file")
}

// A directory the publisher's user may not write to is a config error.
// Root may write anywhere (access(2) agrees), so as root the check runs as
// nobody, from a copy of the test binary that user may run.
func TestCheckConsoleDirectoryNotWritable(t *testing.T) {
	dir := exposedTempDir(t)
	ro := filepath.Join(dir, "ro")
	require.NoError(t, os.Mkdir(ro, 0o555))
	require.NoError(t, os.Chmod(ro, 0o555)) // whatever the umask
	sinkURL := "console://" + filepath.Join(ro, "m.jsonl")

	code, _, stderr := runMainUnprivileged(t, dir, "-sink", sinkURL, "-check")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, sinkURL+": directory "+ro+" is not writable by this user: permission denied")

	require.NoError(t, os.Chmod(ro, 0o777))
	code, stdout, stderr := runMainUnprivileged(t, dir, "-sink", sinkURL, "-check")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "flags: ok\n", stdout)
	entries, err := os.ReadDir(ro)
	require.NoError(t, err)
	require.Empty(t, entries, "-check created the sink's file")
}

// exposedTempDir is a t.TempDir that every user may search (its parent
// too), for runMainUnprivileged.
func exposedTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

// runMainUnprivileged is runMain, but as root it runs the binary as nobody
// (uid and gid 65534) from a copy of the test binary in dir, which
// exposedTempDir made: skipped if that user cannot run it there.
func runMainUnprivileged(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return runMain(t, args...)
	}
	bin := filepath.Join(dir, "publisher.test")
	if _, err := os.Stat(bin); err != nil {
		src, err := os.Open(os.Args[0])
		require.NoError(t, err)
		defer src.Close()
		dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
		require.NoError(t, err)
		_, err = io.Copy(dst, src)
		require.NoError(t, err)
		require.NoError(t, dst.Close())
	}
	run := func(args ...string) (int, string, string, error) {
		cmd := exec.Command(bin, append([]string{"-test.run=^$", "--"}, args...)...)
		cmd.Env = append(os.Environ(), "RUN_MAIN=1")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), stdout.String(), stderr.String(), nil
		}
		return 0, stdout.String(), stderr.String(), err
	}
	if code, _, stderr, err := run("-version"); err != nil || code != 0 {
		t.Skipf("cannot run the test binary as nobody from %s (code %d, %v): %s", dir, code, err, stderr)
	}
	code, stdout, stderr, err := run(args...)
	require.NoError(t, err)
	return code, stdout, stderr
}
