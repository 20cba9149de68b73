package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	riemanngo "github.com/riemann/riemann-go-client"
	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	_ "github.com/meterkit/meter/sink/riemann"
)

// TestMain runs main itself when the test binary is started again by
// start, with the arguments after "--".
func TestMain(m *testing.M) {
	if os.Getenv("RUN_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{os.Args[0]}, os.Args[i+1:]...)
				break
			}
		}
		main()
	}
	os.Exit(m.Run())
}

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

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// start runs the command in a process of its own and waits until it
// listens; stop sends SIGTERM and returns its exit code.
func start(t *testing.T, args ...string) (stdout, stderr *lockedBuffer, stop func() int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "RUN_MAIN=1")
	stdout, stderr = &lockedBuffer{}, &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "listening on ") }, 10*time.Second, 10*time.Millisecond, "%s", stderr)
	return stdout, stderr, func() int {
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("did not stop on SIGTERM")
		}
		return cmd.ProcessState.ExitCode()
	}
}

// The server takes what meterkit's Riemann sink writes (TCP and UDP),
// prints one line per event, answers a query with the latest of each
// series, and stops on SIGTERM with the total.
func TestServerPrintsAndAnswers(t *testing.T) {
	addr := freeAddr(t)
	stdout, stderr, stop := start(t, "-listen", addr, "-udp", "-every", "50ms")
	ctx := context.Background()
	s, err := sink.Open(ctx, "riemann://"+addr+"?ttl=60")
	require.NoError(t, err)
	defer s.Close(ctx)
	at := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
	batch := []meter.Measurement{
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12.5, Time: at, Host: "web1"},
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 13.5, Time: at.Add(time.Second), Host: "web1"},
		{Name: "load.1", Kind: meter.Gauge, Value: 0.25, Time: at, Host: "web2"},
	}
	require.NoError(t, s.Write(ctx, batch))
	u, err := sink.Open(ctx, "riemann+udp://"+addr)
	require.NoError(t, err)
	defer u.Close(ctx)
	require.NoError(t, u.Write(ctx, []meter.Measurement{{Name: "udp.test", Kind: meter.Gauge, Value: 7, Time: at, Host: "web3"}}))

	require.Eventually(t, func() bool { return strings.Count(stdout.String(), "\n") == 4 }, 10*time.Second, 10*time.Millisecond, "%s", stdout)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	require.True(t, strings.HasPrefix(lines[0], "2026-11-30T14:00:00Z web1 cpu.util 12.5 state=ok ttl=60 "), lines[0])
	require.Contains(t, lines[0], " unit=%")
	require.Contains(t, stdout.String(), "web3 udp.test 7")

	c := riemanngo.NewTCPClient(addr, 5*time.Second)
	require.NoError(t, c.Connect())
	got, err := c.QueryIndex(`service = "cpu.util"`)
	require.NoError(t, err)
	require.Len(t, got, 1, "the latest of the series")
	require.Equal(t, 13.5, got[0].Metric)
	require.NoError(t, c.Close())

	require.Equal(t, 0, stop())
	require.Contains(t, stderr.String(), "stopped after 4 events")
}

// -print count prints the total as it grows.
func TestServerCounts(t *testing.T) {
	addr := freeAddr(t)
	stdout, _, stop := start(t, "-listen", addr, "-print", "count", "-every", "50ms")
	ctx := context.Background()
	s, err := sink.Open(ctx, "riemann://"+addr)
	require.NoError(t, err)
	defer s.Close(ctx)
	var batch []meter.Measurement
	for i := range 250 {
		batch = append(batch, meter.Measurement{Name: "n", Kind: meter.Gauge, Value: float64(i), Time: time.Now(), Host: "h"})
	}
	require.NoError(t, s.Write(ctx, batch))
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), " events 250\n") }, 10*time.Second, 10*time.Millisecond, "%s", stdout)
	require.Equal(t, 0, stop())
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	for sc.Scan() {
		require.Regexp(t, `^\S+ events \d+$`, sc.Text())
	}
}

func TestBadFlags(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 2, run([]string{"-print", "loud"}, &out, &errb))
	require.Contains(t, errb.String(), `-print "loud": want events, count or none`)
	require.Equal(t, 2, run([]string{"-tls-cert", "x.pem"}, &out, &errb))
	require.Contains(t, errb.String(), "-tls-cert and -tls-key go together")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	require.Equal(t, 1, run([]string{"-listen", ln.Addr().String()}, &out, &errb), "a port in use")
}
