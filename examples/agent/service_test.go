package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/transport/nanomsg"
)

// lockedBuffer is a bytes.Buffer a process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startMain starts the binary's main with args and env in the background.
func startMain(t *testing.T, env []string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "RUN_MAIN=1"), env...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, &out
}

// exitCode waits for cmd and returns its exit code.
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	require.NoError(t, err)
	return 0
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// notifySocket listens where a service manager would: $NOTIFY_SOCKET.
func notifySocket(t *testing.T) (string, func() string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return path, func() string {
		buf := make([]byte, 256)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
		n, err := conn.Read(buf)
		require.NoError(t, err)
		return string(buf[:n])
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var queuedRE = regexp.MustCompile(`(?m)^meterkit_agent_queued_batches (\d+)$`)

// queued reads the agent's queued batches from /metrics.
func queued(t *testing.T, base string) int {
	_, body := httpGet(t, base+"/metrics")
	m := queuedRE.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// The agent tells systemd it is ready, serves /metrics, and stops with 0
// on SIGTERM when what the publisher did not take stays in its spool.
func TestServiceReadyAndStopKeptInSpool(t *testing.T) {
	sock, recv := notifySocket(t)
	web := freeAddr(t)
	cmd, out := startMain(t, []string{"NOTIFY_SOCKET=" + sock},
		"-connect", "tcp://"+freeAddr(t), "-drivers", "synthetic", "-interval", "100ms", "-batch-age", "50ms",
		"-spool", t.TempDir(), "-http", web, "-stats-every", "0s")
	require.Equal(t, "READY=1", recv(), out.String())
	base := "http://" + web
	code, _ := httpGet(t, base+"/healthz")
	require.Equal(t, 200, code, out.String())
	require.Eventually(t, func() bool { return queued(t, base) > 0 }, 10*time.Second, 50*time.Millisecond, out.String())
	_, body := httpGet(t, base+"/metrics")
	require.Contains(t, body, "# TYPE meterkit_agent_collections_total counter")
	require.Contains(t, body, "# TYPE meterkit_transport_sent_total counter")
	// systemctl reload sends SIGHUP: it must not kill the agent.
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "SIGHUP: config reloaded; nothing changed") }, 5*time.Second, 20*time.Millisecond)
	code, _ = httpGet(t, base+"/healthz")
	require.Equal(t, 200, code, out.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, "STOPPING=1", recv())
	require.Equal(t, 0, exitCode(t, cmd), out.String())
	require.Contains(t, out.String(), "unacknowledged batches stay in the spool")
}

// Without a spool, what the publisher never took is lost at the drain
// deadline: exit 3.
func TestExitDiscarded(t *testing.T) {
	web := freeAddr(t)
	cmd, out := startMain(t, nil,
		"-connect", "tcp://"+freeAddr(t), "-drivers", "synthetic", "-interval", "100ms", "-batch-age", "50ms",
		"-http", web, "-stats-every", "0s")
	require.Eventually(t, func() bool { return queued(t, "http://"+web) > 0 }, 10*time.Second, 50*time.Millisecond, out.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 3, exitCode(t, cmd), out.String())
	require.Contains(t, out.String(), "stopped with measurements discarded")
}

// A port or a spool in use: exit 1.
func TestExitCouldNotStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	code, _, errOut := runMain(t, "-drivers", "uptime", "-http", ln.Addr().String())
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "address already in use")

	dir := t.TempDir()
	ns, err := nanomsg.Dial([]string{"tcp://" + freeAddr(t)})
	require.NoError(t, err)
	a, err := agent.New(ns, agent.WithSpool(dir))
	require.NoError(t, err)
	defer a.Close(context.Background())
	code, _, errOut = runMain(t, "-drivers", "uptime", "-spool", dir)
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "in use by another process")
}
