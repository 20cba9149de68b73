package selfmetrics_test

import (
	"io"
	"net"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/internal/selfmetrics"
)

type stats struct {
	Sent    uint64  `log:"sent"`
	Queued  int     `log:"queued,gauge"`
	Seconds float64 `log:"busy_seconds"`
	Hidden  uint64
}

func TestCollectorNamesFromTags(t *testing.T) {
	n := uint64(0)
	c := selfmetrics.Single("x_", stats{}, nil, func() any { n++; return stats{Sent: n, Queued: -1, Seconds: 1.5, Hidden: 9} })
	want := `
# HELP x_busy_seconds_total busy_seconds
# TYPE x_busy_seconds_total counter
x_busy_seconds_total 1.5
# HELP x_queued queued
# TYPE x_queued gauge
x_queued -1
# HELP x_sent_total sent
# TYPE x_sent_total counter
x_sent_total 1
`
	require.Equal(t, want[1:], scrape(t, c))
	require.Equal(t, uint64(1), n, "read at each scrape")
	require.Contains(t, scrape(t, c), "x_sent_total 2\n")
}

func TestCollectorRows(t *testing.T) {
	c := selfmetrics.New("s_", stats{}, "sink", func(k string) string { return "the " + k }, func() []selfmetrics.Row {
		return []selfmetrics.Row{{Label: "a", Stats: stats{Sent: 1}}, {Label: "b", Stats: stats{Sent: 2}}}
	})
	want := `
# HELP s_sent_total the sent
# TYPE s_sent_total counter
s_sent_total{sink="a"} 1
s_sent_total{sink="b"} 2
`
	require.Contains(t, scrape(t, c), want[1:])
}

// scrape returns what /metrics serves of a registry holding c alone.
func scrape(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return string(b)
}

func TestCollectorRefusesBadNames(t *testing.T) {
	type bad struct {
		N uint64 `log:"a-b"`
	}
	require.PanicsWithValue(t, `selfmetrics: selfmetrics_test.bad.a-b gives the invalid metric name "x_a-b_total"`,
		func() { selfmetrics.Single("x_", bad{}, nil, func() any { return bad{} }) })
}

// Notify sends one datagram to $NOTIFY_SOCKET, a path or an abstract name.
func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	ok, err := selfmetrics.Notify("READY=1")
	require.NoError(t, err)
	require.False(t, ok)

	for _, name := range []string{filepath.Join(t.TempDir(), "notify"), "@meterkit-test-" + t.Name()} {
		addr := name
		if addr[0] == '@' {
			addr = "\x00" + addr[1:]
		}
		conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
		require.NoError(t, err)
		t.Setenv("NOTIFY_SOCKET", name)
		ok, err := selfmetrics.Notify("READY=1")
		require.NoError(t, err)
		require.True(t, ok)
		buf := make([]byte, 64)
		n, err := conn.Read(buf)
		require.NoError(t, err)
		require.Equal(t, "READY=1", string(buf[:n]))
		require.NoError(t, conn.Close())
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	_, err = selfmetrics.Notify("READY=1")
	require.Error(t, err)
}
