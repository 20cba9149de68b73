// Package e2e runs the reference binaries as a user would: built with go
// build, started as processes, talking over real TCP on 127.0.0.1.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// build compiles the named example into dir.
func build(t testing.TB, dir, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	out, err := exec.Command("go", "build", "-o", bin, "github.com/meterkit/meter/examples/"+name).CombinedOutput()
	require.NoError(t, err, "go build %s: %s", name, out)
	return bin
}

// lines collects a process's output lines as they come.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l.mu.Lock()
		l.all = append(l.all, sc.Text())
		l.mu.Unlock()
	}
}

func (l *lines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.all {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

func start(t testing.TB, bin string, args ...string) (*exec.Cmd, *lines, *lines) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, bin, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var out, errOut lines
	var wg sync.WaitGroup
	wg.Go(func() { out.read(stdout) })
	wg.Go(func() { errOut.read(stderr) })
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		wg.Wait()
		_ = cmd.Wait()
		cancel()
	})
	return cmd, &out, &errOut
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestQuickstartMetersThisHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a binary")
	}
	bin := build(t, t.TempDir(), "quickstart")
	// The live view's address is taken: the quickstart serves it on a free
	// port of the same host instead, and says where.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	started := time.Now()
	cmd, out, errOut := start(t, bin, "-interval", "1s", "-http", taken.Addr().String())
	viewRE := regexp.MustCompile(`(?m)^live view: (http://127\.0\.0\.1:\d+/)$`)
	var view string
	require.Eventually(t, func() bool {
		m := viewRE.FindStringSubmatch(errOut.String())
		if m != nil {
			view = m[1]
		}
		return m != nil
	}, 5*time.Second, 20*time.Millisecond, "a live view line within 5 s; stderr:\n%s", errOut)
	t.Logf("live view after %v: %s", time.Since(started).Round(time.Millisecond), view)
	require.NotContains(t, view, taken.Addr().String())
	require.Eventually(t, func() bool {
		return out.count(" cpu.util[total] ") >= 1 && out.count(" memory.used ") >= 1 && out.count(" load.1 ") >= 1
	}, 20*time.Second, 50*time.Millisecond, "stdout:\n%s\nstderr:\n%s", out, errOut)
	// What was printed is in the view too.
	require.Eventually(t, func() bool {
		resp, err := http.Get(view + "api/series?prefix=cpu.util")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"name":"cpu.util"`)
	}, 10*time.Second, 50*time.Millisecond)

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "stderr:\n%s", errOut)
	require.Contains(t, errOut.String(), "acknowledged by the publisher")
}

func TestAgentAndPublisherProcessesSurviveAgentRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	dir := t.TempDir()
	pubBin, agentBin := build(t, dir, "publisher"), build(t, dir, "agent")
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))

	pub, pubOut, pubErr := start(t, pubBin, "-listen", addr, "-sink", "console://?format=json")
	agentArgs := []string{"-connect", addr, "-interval", "200ms", "-drivers", "load,uptime", "-id", "e2e-agent"}
	agent1, _, _ := start(t, agentBin, agentArgs...)
	require.Eventually(t, func() bool { return pubOut.count(`"name":"uptime"`) >= 2 },
		20*time.Second, 50*time.Millisecond, "publisher stderr:\n%s", pubErr)

	// Kill the agent hard; the publisher must keep serving a new one.
	require.NoError(t, agent1.Process.Kill())
	_ = agent1.Wait()
	before := pubOut.count(`"name":"uptime"`)
	start(t, agentBin, agentArgs...)
	require.Eventually(t, func() bool { return pubOut.count(`"name":"uptime"`) >= before+2 },
		20*time.Second, 50*time.Millisecond, "publisher stderr:\n%s", pubErr)
	require.Nil(t, pub.ProcessState, "publisher still running")

	require.NoError(t, pub.Process.Signal(syscall.SIGTERM))
	require.NoError(t, pub.Wait(), "publisher exits cleanly on SIGTERM:\n%s", pubErr)
}

func TestPublisherNeverPrintsSinkPasswordsAndReloadsKeysOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	dir := t.TempDir()
	pubBin, ctlBin := build(t, dir, "publisher"), build(t, dir, "meterctl")
	keys := filepath.Join(dir, "publisher.keys")
	out, err := exec.Command(ctlBin, "-keys", keys, "tenant", "create", "acme").CombinedOutput()
	require.NoError(t, err, "%s", out)

	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	// The AMQP sink connects lazily, so a broker that is not there is fine here.
	pub, _, pubErr := start(t, pubBin, "-listen", addr, "-keys", keys,
		"-sink", "ceilometer+amqp://guest:s3cret-pw@127.0.0.1:1/")
	require.Eventually(t, func() bool { return pubErr.count("msg=publishing") == 1 }, 20*time.Second, 20*time.Millisecond, "%s", pubErr)

	out, err = exec.Command(ctlBin, "-keys", keys, "key", "rotate", "-tenant", "acme").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, pub.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return pubErr.count("key file reloaded") == 1 }, 10*time.Second, 20*time.Millisecond, "%s", pubErr)

	require.NoError(t, pub.Process.Signal(syscall.SIGTERM))
	_ = pub.Wait()
	require.NotContains(t, pubErr.String(), "s3cret-pw")
	require.Contains(t, pubErr.String(), "guest:xxxxx@127.0.0.1:1")
}

// TestSealedAgentAndPublisher: the agent seals with its tenant's key
// (-key-file), the publisher opens with the key file (-keys); an agent with
// another tenant's key is refused, counted and logged by the publisher's
// sealing receiver, and never printed.
func TestSealedAgentAndPublisher(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	dir := t.TempDir()
	pubBin, agentBin, ctlBin := build(t, dir, "publisher"), build(t, dir, "agent"), build(t, dir, "meterctl")
	keys := filepath.Join(dir, "publisher.keys")
	for _, args := range [][]string{
		{"tenant", "create", "acme"},
		{"key", "export", "-tenant", "acme", "-out", filepath.Join(dir, "acme.key")},
	} {
		out, err := exec.Command(ctlBin, append([]string{"-keys", keys}, args...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	// Another tenant's key file, unknown to the publisher.
	other := filepath.Join(dir, "other.keys")
	for _, args := range [][]string{
		{"tenant", "create", "acme"},
		{"key", "export", "-tenant", "acme", "-out", filepath.Join(dir, "forged.key")},
	} {
		out, err := exec.Command(ctlBin, append([]string{"-keys", other}, args...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}

	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	pub, pubOut, pubErr := start(t, pubBin, "-listen", addr, "-keys", keys, "-sink", "console://?format=json")
	start(t, agentBin, "-connect", addr, "-interval", "200ms", "-drivers", "uptime", "-id", "sealed",
		"-tenant", "acme", "-key-file", filepath.Join(dir, "acme.key"))
	require.Eventually(t, func() bool { return pubOut.count(`"name":"uptime"`) >= 2 },
		20*time.Second, 50*time.Millisecond, "publisher stderr:\n%s", pubErr)

	start(t, agentBin, "-connect", addr, "-interval", "200ms", "-drivers", "load", "-id", "forger",
		"-tenant", "acme", "-key-file", filepath.Join(dir, "forged.key"))
	require.Eventually(t, func() bool { return pubErr.count("seal: refused an envelope") >= 1 },
		20*time.Second, 50*time.Millisecond, "publisher stderr:\n%s", pubErr)
	require.Contains(t, pubErr.String(), "agent=forger")
	require.Zero(t, pubOut.count(`"name":"load.`), "nothing of the forger's (load) reached the sink")

	require.NoError(t, pub.Process.Signal(syscall.SIGTERM))
	require.NoError(t, pub.Wait(), "publisher exits cleanly on SIGTERM:\n%s", pubErr)
	require.Contains(t, pubErr.String(), "envelopes.wrong_key=")
	require.NotContains(t, pubErr.String(), "envelopes.wrong_key=0 ", "the forger's envelopes are counted:\n%s", pubErr)
}
