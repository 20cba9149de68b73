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

	"github.com/meterkit/meter/driver"
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

// TestCheckDoesNoIO runs -check on a config naming an instance of every
// driver this binary has, each pointed at a peer that counts connections,
// with a spool directory that does not exist: it passes, no peer sees a
// connection or datagram, and no spool is made.
func TestCheckDoesNoIO(t *testing.T) {
	dir := t.TempDir()
	p := newPeer(t)
	creds := filepath.Join(dir, "rabbit.creds")
	require.NoError(t, os.WriteFile(creds, []byte("guest:guest\n"), 0o600))
	settings := map[string]string{
		"exec":         `{argv: [/bin/true]}`,
		"snmp":         fmt.Sprintf(`{target: "%s", objects: [{oid: 1.3.6.1.2.1.1.3.0, name: sys.uptime}]}`, p.addr),
		"prometheus":   fmt.Sprintf(`{url: "http://%s/metrics"}`, p.addr),
		"libvirt":      fmt.Sprintf(`{uri: "qemu+tcp://%s/system"}`, p.addr),
		"notification": fmt.Sprintf(`{url: "amqp://%s/", credentials_file: %s}`, p.addr, creds),
	}
	cfg := fmt.Sprintf("publishers:\n  connect: [tcp://%s]\nspool: %s\nhttp: %s\ndrivers:\n",
		p.addr, filepath.Join(dir, "spool"), p.addr)
	for _, name := range driver.Drivers() {
		cfg += "  - type: " + name + "\n"
		if s, ok := settings[name]; ok {
			cfg += "    settings: " + s + "\n"
		}
	}
	file := filepath.Join(dir, "agent.yaml")
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
	require.ElementsMatch(t, []string{"agent.yaml", "rabbit.creds"}, names, "-check made a file or a spool")
}
