package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A bearer token rotated in its file reaches the agent's prometheus
// instance with a SIGHUP: the endpoint, which took only the old token,
// now takes only the new one; scrapes fail until the reload, which rebuilds
// the instance (its settings are unchanged, its token file is not), and
// succeed after it. The other instance keeps running throughout.
func TestSIGHUPPicksUpARotatedSecretFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	dir := t.TempDir()
	pubBin, agentBin := build(t, dir, "publisher"), build(t, dir, "agent")
	var token atomic.Value
	token.Store("token-1")
	var refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token.Load().(string) {
			refused.Add(1)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "# TYPE e2e_rotation_probe gauge\ne2e_rotation_probe 1")
	}))
	defer srv.Close()
	tokenFile := filepath.Join(dir, "endpoint.token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("token-1\n"), 0o600))
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
publishers: {connect: [`+addr+`]}
batch: {age: 50ms}
drivers:
  - {name: seq, type: synthetic, interval: 100ms, settings: {name: e2e.seq, per_collection: 1}}
  - name: endpoint
    type: prometheus
    interval: 100ms
    settings: {url: "`+srv.URL+`/metrics", bearer_token_file: "`+tokenFile+`"}
`), 0o600))

	pub, pubOut, pubErr := start(t, pubBin, "-listen", addr, "-sink", "console://?format=json")
	agent, _, agentErr := start(t, agentBin, "-config", cfg)
	const probe, seq = `"name":"e2e_rotation_probe"`, `"name":"e2e.seq"`
	require.Eventually(t, func() bool { return pubOut.count(probe) >= 3 }, 20*time.Second, 20*time.Millisecond,
		"publisher stdout:\n%s\nagent stderr:\n%s", pubOut, agentErr)

	// Rotate: the endpoint takes only the new token, which the file holds.
	token.Store("token-2")
	require.NoError(t, os.WriteFile(tokenFile, []byte("token-2\n"), 0o600))
	require.Eventually(t, func() bool { return refused.Load() >= 3 }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // what was scraped before the rotation has reached the publisher
	stale, seqBefore := pubOut.count(probe), pubOut.count(seq)
	time.Sleep(500 * time.Millisecond) // five more scrapes, refused
	require.Equal(t, stale, pubOut.count(probe), "no scrape succeeds with the old token")

	require.NoError(t, agent.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return pubOut.count(probe) >= stale+3 }, 20*time.Second, 20*time.Millisecond,
		"scrapes succeed again after the SIGHUP; agent stderr:\n%s", agentErr)
	require.Contains(t, agentErr.String(), "drivers: endpoint: a secret file it names changed (rebuilt)")
	require.Greater(t, pubOut.count(seq), seqBefore, "the other instance went on")

	require.NoError(t, agent.Process.Signal(syscall.SIGTERM))
	require.NoError(t, agent.Wait(), "agent stderr:\n%s", agentErr)
	require.NoError(t, pub.Process.Signal(syscall.SIGTERM))
	require.NoError(t, pub.Wait(), "publisher stderr:\n%s", pubErr)
}
