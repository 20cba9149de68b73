package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitExit sends sig to cmd and returns its exit code, failing when it has
// not exited within d.
func waitExit(t *testing.T, cmd *exec.Cmd, sig os.Signal, d time.Duration) int {
	t.Helper()
	require.NoError(t, cmd.Process.Signal(sig))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(d):
		t.Fatalf("still running %v after %v", d, sig)
		return -1
	}
}

// The quickstart's view serves the page and the host's own series under its
// host name, and Ctrl-C stops everything within seconds, exit 0, an event
// stream open in a browser included.
func TestQuickstartLiveViewStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a binary")
	}
	bin := build(t, t.TempDir(), "quickstart")
	cmd, _, errOut := start(t, bin, "-interval", "300ms", "-drivers", "cpu,memory", "-http", "127.0.0.1:0")
	viewRE := regexp.MustCompile(`(?m)^live view: (http://127\.0\.0\.1:\d+/)$`)
	var view string
	require.Eventually(t, func() bool {
		m := viewRE.FindStringSubmatch(errOut.String())
		if m != nil {
			view = m[1]
		}
		return m != nil
	}, 5*time.Second, 20*time.Millisecond, "a live view line within 5 s; stderr:\n%s", errOut)

	get := func(url string) (int, string) {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(view)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "<html")

	host, err := os.Hostname()
	require.NoError(t, err)
	var got struct {
		Series []struct {
			Name, Host string
			Points     int
		}
	}
	require.Eventually(t, func() bool {
		code, body := get(view + "api/series?prefix=cpu.")
		if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
			return false
		}
		for _, s := range got.Series {
			if s.Host == host && strings.HasPrefix(s.Name, "cpu.") && s.Points > 0 {
				return true
			}
		}
		return false
	}, 20*time.Second, 100*time.Millisecond, "the cpu series of host %q in the view: %+v", host, &got)

	// An event stream open at Ctrl-C ends, and does not hold the stop up.
	resp, err := http.Get(view + "events")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", strings.Split(resp.Header.Get("Content-Type"), ";")[0])
	streamEnded := make(chan struct{})
	go func() { defer close(streamEnded); _, _ = io.Copy(io.Discard, resp.Body) }()

	require.Equal(t, 0, waitExit(t, cmd, syscall.SIGINT, 15*time.Second), "stderr:\n%s", errOut)
	select {
	case <-streamEnded:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream outlived the quickstart")
	}
	_, err = net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(view, "http://"), "/"), time.Second)
	require.Error(t, err, "the view stopped with the quickstart")
}

// -http "" turns the view off, the console goes on, and Ctrl-C stops it;
// without -http the view is asked for at 127.0.0.1:7070.
func TestQuickstartWithoutLiveView(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a binary")
	}
	bin := build(t, t.TempDir(), "quickstart")
	help, _ := exec.Command(bin, "-h").CombinedOutput()
	require.Regexp(t, `-http string\n\s+address of the live view .*\(default "127\.0\.0\.1:7070"\)`, string(help))

	cmd, out, errOut := start(t, bin, "-http", "", "-interval", "300ms", "-drivers", "cpu")
	require.Eventually(t, func() bool { return out.count(" cpu.") > 0 }, 20*time.Second, 50*time.Millisecond,
		"stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, 0, waitExit(t, cmd, syscall.SIGINT, 15*time.Second), "stderr:\n%s", errOut)
	require.Contains(t, errOut.String(), "metering this host")
	require.NotContains(t, errOut.String(), "live view")
}
