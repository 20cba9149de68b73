//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startSnmpd runs Debian's snmpd on a free UDP port of 127.0.0.1, with a
// v2c community "public" and a v3 user "meterkit" (authPriv), and returns
// its address once it answers.
func startSnmpd(t *testing.T) string {
	t.Helper()
	bin := "/usr/sbin/snmpd"
	if p, err := exec.LookPath("snmpd"); err == nil {
		bin = p
	}
	_, err := os.Stat(bin)
	require.NoError(t, err, "Debian: apt-get install -y snmpd")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())
	dir := t.TempDir()
	conf := filepath.Join(dir, "snmpd.conf")
	require.NoError(t, os.WriteFile(conf, []byte("rocommunity public 127.0.0.1\ncreateUser meterkit SHA authpass123 AES privpass123\nrouser meterkit priv\n"), 0o600))
	logf, err := os.Create(filepath.Join(dir, "snmpd.log"))
	require.NoError(t, err)
	defer logf.Close()
	cmd := exec.Command(bin, "-f", "-Lo", "-C", "-c", conf, "-m", "", "udp:"+addr)
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+filepath.Join(dir, "persist"), "MIBS=")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	// Ready when snmpget answers, or, without it, when the port is bound.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.ListenPacket("udp", addr)
		if err != nil { // bound by snmpd
			time.Sleep(200 * time.Millisecond)
			return addr
		}
		_ = c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "snmpd.log"))
	t.Fatalf("snmpd did not bind %s within 10s:\n%s", addr, log)
	return ""
}

func secret(t *testing.T, dir, name, value string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(value+"\n"), 0o600))
	return p
}

// The reference agent runs, from one config file, two SNMP instances
// against Debian's snmpd (v2c, and v3 with its passwords in files), a
// Nagios-style check through exec and a Prometheus endpoint, side by side,
// each with its own interval; every instance's measurements reach the
// reference publisher, told apart by the instance's name as their prefix.
func TestAgentRunsEveryKindOfInstance(t *testing.T) {
	snmpAddr := startSnmpd(t)
	dir := t.TempDir()
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, "# HELP app_requests_total Requests served.\n# TYPE app_requests_total counter\napp_requests_total{code=\"200\"} 1027\n"+
			"# HELP app_queue_depth Items queued.\n# TYPE app_queue_depth gauge\napp_queue_depth 3\n")
	}))
	defer prom.Close()
	check := filepath.Join(dir, "check_queue")
	require.NoError(t, os.WriteFile(check, []byte("#!/bin/sh\necho 'QUEUE WARNING - 42 items | items=42;40;50;0; age=1.5s;;;0;'\nexit 1\n"), 0o755))

	pubBin, agentBin := build(t, dir, "publisher"), build(t, dir, "agent")
	listen := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `publishers:
  connect: [%s]
batch: {size: 100, age: 100ms}
stats_every: 0s
interval: 1s
drivers:
  - name: switch-a
    type: snmp
    settings:
      target: %s
      prefix: switch-a
      community_file: %s
      objects: [{oid: 1.3.6.1.2.1.1.3.0, name: uptime, unit: s, scale: 0.01}]
  - name: switch-b
    type: snmp
    interval: 2s
    timeout: 1s
    settings:
      target: %s
      prefix: switch-b
      version: "3"
      user: meterkit
      auth_password_file: %s
      priv_password_file: %s
      objects: [{oid: 1.3.6.1.2.1.1.3.0, name: uptime, unit: s, scale: 0.01}]
  - name: check-queue
    type: exec
    settings: {format: nagios, prefix: check-queue, argv: [%s]}
  - name: app
    type: prometheus
    interval: 500ms
    settings: {url: "%s/metrics", prefix: app}
`, listen, snmpAddr, secret(t, dir, "community", "public"), snmpAddr,
		secret(t, dir, "auth", "authpass123"), secret(t, dir, "priv", "privpass123"), check, prom.URL), 0o600))

	out, err := exec.Command(agentBin, "-config", cfg, "-check").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, cfg+": ok\n", string(out))

	_, pubOut, pubErr := start(t, pubBin, "-listen", listen, "-sink", "console://?format=json", "-stats-every", "0s")
	_, _, agentErr := start(t, agentBin, "-config", cfg)

	want := []string{"switch-a.uptime", "switch-b.uptime", "check-queue.state", "check-queue.items", "check-queue.age",
		"app.app_requests_total", "app.app_queue_depth"}
	seen := map[string]map[string]any{}
	require.Eventually(t, func() bool {
		pubOut.mu.Lock()
		all := slices.Clone(pubOut.all)
		pubOut.mu.Unlock()
		for _, line := range all {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				if name, ok := m["name"].(string); ok {
					seen[name] = m
				}
			}
		}
		for _, w := range want {
			if seen[w] == nil {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "want %v\npublisher:\n%s\n%s\nagent:\n%s", want, pubOut, pubErr, agentErr)

	for _, w := range []string{"switch-a.uptime", "switch-b.uptime"} {
		require.Equal(t, "s", seen[w]["unit"], w)
		require.Greater(t, seen[w]["value"].(float64), 0.0, w)
	}
	require.Equal(t, 1.0, seen["check-queue.state"]["value"], "exit 1: warning")
	require.Equal(t, "warning", seen["check-queue.state"]["labels"].(map[string]any)["state"])
	require.Equal(t, 42.0, seen["check-queue.items"]["value"])
	require.Equal(t, "cumulative", seen["app.app_requests_total"]["kind"])
	require.Equal(t, 1027.0, seen["app.app_requests_total"]["value"])
	require.Equal(t, 3.0, seen["app.app_queue_depth"]["value"])
	require.NotContains(t, agentErr.String(), "authpass123")
	require.False(t, strings.Contains(agentErr.String(), "level=ERROR"), "agent:\n%s", agentErr)
}
