package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// -sink web://HOST:PORT serves the live view from the start of the run,
// shows what the agents send, and stops with the publisher.
func TestWebSink(t *testing.T) {
	view, listen := freeAddr(t), "tcp://"+freeAddr(t)
	cmd, out := startMain(t, nil, "-listen", listen, "-sink", "web://"+view, "-stats-every", "0s")
	base := "http://" + view + "/"
	require.Eventually(t, func() bool { c, _ := httpGet(t, base); return c == 200 }, 10*time.Second, 20*time.Millisecond,
		"the view is served before any batch arrives: %s", out)
	code, body := httpGet(t, base+"api/series")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"series":[],"position":0}`, body)

	sendSome(t, listen, 3)
	type series struct {
		Name   string `json:"name"`
		Host   string `json:"host"`
		Points int    `json:"points"`
	}
	var got struct{ Series []series }
	require.Eventually(t, func() bool {
		_, body := httpGet(t, base+"api/series?host=h")
		return json.Unmarshal([]byte(body), &got) == nil && len(got.Series) == 1 && got.Series[0].Points == 3
	}, 10*time.Second, 50*time.Millisecond, "%+v %s", got, out)
	require.Equal(t, series{Name: "test.n", Host: "h", Points: 3}, got.Series[0])

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, exitCode(t, cmd), out.String())
	_, err := net.DialTimeout("tcp", view, time.Second)
	require.Error(t, err, "the view stopped with the publisher")
}

// A view's port in use: exit 1, as for the publisher's own; -check, which
// binds nothing, passes.
func TestWebSinkPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	code, stdout, errOut := runMain(t, "-sink", "web://"+ln.Addr().String(), "-check")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "flags: ok\n", stdout)
	code, _, errOut = runMain(t, "-listen", "tcp://"+freeAddr(t), "-sink", "web://"+ln.Addr().String())
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "address already in use")
}

// A view added to the config file starts with the SIGHUP that reloads it,
// before any batch; one whose port is taken leaves the running config as
// it was (the error says which sink), and the publisher goes on.
func TestWebSinkAddedByReload(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "publisher.yaml")
	listen := "tcp://" + freeAddr(t)
	write := func(sinks ...string) {
		body := "listen: " + listen + "\nstats_every: 0s\nsinks:\n"
		for _, s := range sinks {
			body += "  - " + s + "\n"
		}
		require.NoError(t, os.WriteFile(conf, []byte(body), 0o600))
	}
	write("discard://")
	cmd, out := startMain(t, nil, "-config", conf)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "publishing") }, 10*time.Second, 20*time.Millisecond, "%s", out)

	view := freeAddr(t)
	write("discard://", "web://"+view)
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { c, _ := httpGet(t, "http://"+view+"/"); return c == 200 }, 10*time.Second, 20*time.Millisecond,
		"the added view serves before any batch: %s", out)

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	write("discard://", "web://"+view, "web://"+taken.Addr().String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "SIGHUP: config not applied") }, 10*time.Second, 20*time.Millisecond, "%s", out)
	require.Contains(t, out.String(), "address already in use")
	code, _ := httpGet(t, "http://"+view+"/")
	require.Equal(t, 200, code, "the view in use goes on: %s", out)

	sendSome(t, listen, 2)
	require.Eventually(t, func() bool {
		_, b := httpGet(t, "http://"+view+"/api/series?host=h")
		return strings.Contains(b, `"test.n"`)
	},
		10*time.Second, 50*time.Millisecond, "%s", out)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, exitCode(t, cmd), out.String())
}
