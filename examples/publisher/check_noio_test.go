package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/sink"
)

// peer is a TCP listener and a UDP socket on one loopback port that count
// every connection and datagram: the addresses a -check must not touch.
type peer struct {
	addr  string
	conns atomic.Int64
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &peer{addr: ln.Addr().String()}
	uc, err := net.ListenPacket("udp", p.addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close(); _ = uc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			_ = c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := uc.ReadFrom(buf); err != nil {
				return
			}
			p.conns.Add(1)
		}
	}()
	return p
}

// TestCheckDoesNoIO runs -check on a config naming a sink of every scheme
// this binary has, each pointed at a peer that counts connections (Keystone
// too, through a clouds.yaml), with a console file that does not exist (in
// a directory that does: -check stats it) and a spool directory that does
// not: it passes, no peer sees a connection or datagram, and neither the
// file nor the spool is made.
func TestCheckDoesNoIO(t *testing.T) {
	dir := t.TempDir()
	p := newPeer(t)
	clouds := filepath.Join(dir, "clouds.yaml")
	require.NoError(t, os.WriteFile(clouds, fmt.Appendf(nil, `clouds:
  test:
    auth: {auth_url: "http://%s/v3", username: u, password: p, project_name: demo, user_domain_name: Default, project_domain_name: Default}
    region_name: RegionOne
`, p.addr), 0o600))
	_, port, _ := net.SplitHostPort(p.addr)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "out"), 0o755))
	urls := map[string]string{
		"console":          "console://" + filepath.Join(dir, "out", "measurements.jsonl") + "?format=json",
		"riemann":          "riemann://" + p.addr + "?receipts=10m",
		"riemann+udp":      "riemann+udp://" + p.addr,
		"riemann+tls":      "riemann+tls://" + p.addr,
		"ceilometer+amqp":  "ceilometer+amqp://guest:guest@" + p.addr + "/",
		"ceilometer+amqps": "ceilometer+amqps://guest:guest@" + p.addr + "/",
		"ceilometer":       "ceilometer://?cloud=test&clouds_file=" + clouds,
		"ceilometer+http":  "ceilometer+http://" + p.addr + "?cloud=test&clouds_file=" + clouds,
		"ceilometer+https": "ceilometer+https://" + p.addr + "?cloud=test&clouds_file=" + clouds,
		"gnocchi":          "gnocchi://?cloud=test&clouds_file=" + clouds,
		"gnocchi+http":     "gnocchi+http://" + p.addr + "?auth=basic&user=admin",
		"gnocchi+https":    "gnocchi+https://" + p.addr + "?cloud=test&clouds_file=" + clouds,
		"web":              "web://127.0.0.1:" + port, // the port is taken: a listen would fail
		"discard":          "discard://",
	}
	cfg := fmt.Sprintf("listen: tcp://%s\nspool: %s\nhttp: %s\nsinks:\n", p.addr, filepath.Join(dir, "spool"), p.addr)
	for _, scheme := range sink.Schemes() {
		u, ok := urls[scheme]
		require.True(t, ok, "no URL in this test for sink scheme %q", scheme)
		cfg += fmt.Sprintf("  - name: %s\n    url: %q\n", scheme, u)
	}
	file := filepath.Join(dir, "publisher.yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))

	start := time.Now()
	code, stdout, stderr := runMain(t, "-config", file, "-check")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, file+": ok\n", stdout)
	require.Less(t, time.Since(start), 30*time.Second, "a check must not wait on any peer")
	time.Sleep(100 * time.Millisecond) // a late dial would still be counted
	require.Zero(t, p.conns.Load(), "-check connected to a peer")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"publisher.yaml", "clouds.yaml", "out"}, names, "-check made a file or a spool")
	entries, err = os.ReadDir(filepath.Join(dir, "out"))
	require.NoError(t, err)
	require.Empty(t, entries, "-check made the console sink's file")
}
