//go:build integration

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// scrape returns the body of http://addr/metrics.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	return string(b)
}

// promQuery asks Prometheus at base for the single value of an instant
// query; ok false while the query has no result.
func promQuery(t *testing.T, base, q string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil || r.Status != "success" || len(r.Data.Result) != 1 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// Debian's prometheus scrapes the reference agent and publisher every
// second; their acknowledged and written counts come back through its HTTP
// API, and both /metrics pass promtool check metrics.
func TestPrometheusScrapesAgentAndPublisher(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	require.NoError(t, err, "Debian: apt-get install -y --no-install-recommends prometheus")
	promtool, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool comes with Debian's prometheus")

	dir := t.TempDir()
	pubBin, agentBin := build(t, dir, "publisher"), build(t, dir, "agent")
	listen := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	pubWeb := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	agentWeb := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	pub, _, pubErr := start(t, pubBin, "-listen", listen, "-sink", "discard://", "-http", pubWeb, "-stats-every", "0s")
	agent, _, agentErr := start(t, agentBin, "-connect", listen, "-drivers", "synthetic", "-interval", "200ms",
		"-batch-age", "100ms", "-http", agentWeb, "-stats-every", "0s", "-spool", filepath.Join(dir, "spool"))

	// Both serve, and what they serve is clean by promtool.
	require.Eventually(t, func() bool {
		r, err := http.Get("http://" + agentWeb + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}, 20*time.Second, 50*time.Millisecond, "agent:\n%s", agentErr)
	for name, addr := range map[string]string{"agent": agentWeb, "publisher": pubWeb} {
		body := scrape(t, addr)
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewBufferString(body)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool check metrics on the %s's /metrics: %s", name, out)
		require.Contains(t, body, "meterkit_"+name+"_")
	}

	promPort := freePort(t)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: agent
    static_configs: [{targets: ["%s"]}]
  - job_name: publisher
    static_configs: [{targets: ["%s"]}]
`, agentWeb, pubWeb)
	cfgFile := filepath.Join(dir, "prom.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(cfg), 0o600))
	_, _, promErr := start(t, promBin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort))
	base := fmt.Sprintf("http://127.0.0.1:%d", promPort)

	// The first scrape comes some seconds after start: poll, never sleep.
	require.Eventually(t, func() bool {
		a, ok1 := promQuery(t, base, `up{job="agent"}`)
		p, ok2 := promQuery(t, base, `up{job="publisher"}`)
		return ok1 && ok2 && a == 1 && p == 1
	}, 40*time.Second, 200*time.Millisecond, "prometheus:\n%s", promErr)

	var acked, written float64
	require.Eventually(t, func() bool {
		var ok1, ok2 bool
		acked, ok1 = promQuery(t, base, `meterkit_agent_acked_total{job="agent"}`)
		written, ok2 = promQuery(t, base, `meterkit_publisher_written_total{job="publisher"}`)
		return ok1 && ok2 && acked >= 100 && written >= 100
	}, 40*time.Second, 200*time.Millisecond, "prometheus:\n%s", promErr)
	sinkWritten, ok := promQuery(t, base, `meterkit_sink_written_total{job="publisher",sink="discard:"}`)
	require.True(t, ok)
	require.Positive(t, sinkWritten)
	t.Logf("through Prometheus: agent acked %v, publisher written %v, sink written %v", acked, written, sinkWritten)

	// What Prometheus holds is what the binaries counted, a scrape ago.
	live := func(addr, name string) float64 {
		var v float64
		for _, line := range bytes.Split([]byte(scrape(t, addr)), []byte("\n")) {
			if n, err := fmt.Sscanf(string(line), name+" %g", &v); n == 1 && err == nil {
				return v
			}
		}
		t.Fatalf("no %s in /metrics", name)
		return 0
	}
	require.LessOrEqual(t, acked, live(agentWeb, "meterkit_agent_acked_total"))
	require.LessOrEqual(t, written, live(pubWeb, "meterkit_publisher_written_total"))

	// Both stop cleanly: everything acknowledged or spooled.
	require.NoError(t, agent.Process.Signal(syscall.SIGTERM))
	require.NoError(t, agent.Wait(), "agent:\n%s", agentErr)
	require.NoError(t, pub.Process.Signal(syscall.SIGTERM))
	require.NoError(t, pub.Wait(), "publisher:\n%s", pubErr)
}
