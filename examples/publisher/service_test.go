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

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/riemann/riemanntest"
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

// metric reads one unlabelled metric from /metrics; -1 if absent.
func metric(t *testing.T, base, name string) int {
	_, body := httpGet(t, base+"/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// sendSome runs an agent in this process that sends n measurements to the
// publisher at addr, until the test ends.
func sendSome(t *testing.T, addr string, n int) {
	t.Helper()
	ns, err := nanomsg.Dial([]string{addr})
	require.NoError(t, err)
	a, err := agent.New(ns, agent.WithBatch(1, 10*time.Millisecond), agent.WithStatsInterval(agent.NoStats))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; _ = a.Close(context.Background()) })
	for i := range n {
		require.NoError(t, a.Add(meter.Measurement{Name: "test.n", Kind: meter.Gauge, Value: float64(i), Host: "h", Time: time.Now()}))
	}
}

// The publisher tells systemd it is ready, serves /metrics and /readyz,
// and stops with 0 on SIGTERM when everything was delivered.
func TestServiceReadyAndStop(t *testing.T) {
	sock, recv := notifySocket(t)
	web, listen := freeAddr(t), "tcp://"+freeAddr(t)
	cmd, out := startMain(t, []string{"NOTIFY_SOCKET=" + sock},
		"-listen", listen, "-sink", "discard://", "-http", web, "-stats-every", "0s")
	require.Equal(t, "READY=1", recv(), out.String())
	base := "http://" + web
	code, body := httpGet(t, base+"/readyz")
	require.Equal(t, 200, code, body+out.String())
	sendSome(t, listen, 4)
	require.Eventually(t, func() bool { return metric(t, base, "meterkit_publisher_written_total") == 4 }, 10*time.Second, 50*time.Millisecond)
	_, body = httpGet(t, base+"/metrics")
	require.Contains(t, body, `meterkit_sink_written_total{sink="discard:"} 4`+"\n")
	require.Equal(t, 4, metric(t, base, "meterkit_transport_acked_o_k_total"))
	// systemctl reload sends SIGHUP: it must not kill the publisher.
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "SIGHUP: config reloaded; nothing changed") }, 5*time.Second, 20*time.Millisecond)
	code, _ = httpGet(t, base+"/healthz")
	require.Equal(t, 200, code, out.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, "STOPPING=1", recv())
	require.Equal(t, 0, exitCode(t, cmd), out.String())
}

// A spooled batch the store refuses for good is discarded: exit 3.
func TestExitDiscarded(t *testing.T) {
	store := riemanntest.NewServer(t)
	store.Reject("no such service")
	web, listen := freeAddr(t), "tcp://"+freeAddr(t)
	cmd, out := startMain(t, nil, "-listen", listen, "-sink", "riemann://"+store.Addr(), "-spool", t.TempDir(),
		"-http", web, "-stats-every", "0s")
	base := "http://" + web
	require.Eventually(t, func() bool { c, _ := httpGet(t, base+"/healthz"); return c == 200 }, 10*time.Second, 20*time.Millisecond, out.String())
	sendSome(t, listen, 2)
	require.Eventually(t, func() bool { return metric(t, base, "meterkit_publisher_sink_dropped_total") == 2 }, 10*time.Second, 50*time.Millisecond, out.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 3, exitCode(t, cmd), out.String())
	require.Contains(t, out.String(), "stopped with measurements discarded")
}

// A port or a spool in use: exit 1.
func TestExitCouldNotStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	code, _, errOut := runMain(t, "-listen", "tcp://"+ln.Addr().String(), "-sink", "discard://")
	require.Equal(t, 1, code, errOut)
	code, _, errOut = runMain(t, "-listen", "tcp://"+freeAddr(t), "-sink", "discard://", "-http", ln.Addr().String())
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "address already in use")

	dir := t.TempDir()
	r, err := nanomsg.Listen("tcp://127.0.0.1:0")
	require.NoError(t, err)
	d, err := sink.Open(context.Background(), "discard://")
	require.NoError(t, err)
	p, err := publisher.New(r, publisher.WithSink("discard", d), publisher.WithSpool(dir))
	require.NoError(t, err)
	defer p.Close(context.Background())
	code, _, errOut = runMain(t, "-listen", "tcp://"+freeAddr(t), "-sink", "discard://", "-spool", dir)
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "in use by another process")
}
