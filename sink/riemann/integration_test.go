//go:build integration

package riemann_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink/riemann"
	"github.com/meterkit/meter/sink/riemann/riemanntest"
)

// These tests run the real riemann-client (Debian's riemann-c-client)
// against riemanntest, and read our sink's events back with it:
//
//	go test -tags integration -run Integration ./sink/riemann

func riemannClient(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("riemann-client")
	if err != nil {
		t.Skip("riemann-client not installed (apt-get install -y riemann-c-client)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "timeout", append([]string{"15", path}, args...)...).CombinedOutput()
	require.NoError(t, err, "riemann-client %s: %s", strings.Join(args, " "), out)
	return string(out)
}

var sendArgs = []string{"send", "-h", "web1", "-S", "api.requests", "-s", "ok", "-d", "42.5", "-t", "tag", "-a", "k=v", "-L", "60"}

func checkSent(t *testing.T, e riemanntest.Event, transport string) {
	t.Helper()
	require.Equal(t, "web1", e.Host)
	require.Equal(t, "api.requests", e.Service)
	require.Equal(t, "ok", e.State)
	require.Equal(t, 42.5, e.Metric)
	require.NotNil(t, e.Proto.MetricD, "-d sets metric_d")
	require.Equal(t, []string{"tag"}, e.Tags)
	require.Equal(t, "v", e.Attributes["k"])
	require.Equal(t, "riemann-c-client", e.Attributes["x-client"])
	require.True(t, e.HasTTL)
	require.Equal(t, float32(60), e.TTL)
	require.True(t, e.ServerTime, "riemann-client sends no time")
	require.WithinDuration(t, time.Now(), e.Time, time.Minute)
	require.Equal(t, transport, e.Transport)
}

// queryEvent is how riemann-client query -j prints an event.
type queryEvent struct {
	Host        string            `json:"host"`
	Service     string            `json:"service"`
	State       string            `json:"state"`
	Description string            `json:"description"`
	MetricD     float64           `json:"metric_d"`
	TTL         float64           `json:"ttl"`
	Time        int64             `json:"time"`
	TimeMicros  int64             `json:"time_micros"`
	Tags        []string          `json:"tags"`
	Attributes  map[string]string `json:"attributes"`
	Raw         map[string]any    `json:"-"`
}

func query(t *testing.T, q string, port string) []queryEvent {
	t.Helper()
	out := riemannClient(t, "query", q, "-j", "127.0.0.1", port)
	var evs []queryEvent
	require.NoError(t, json.Unmarshal([]byte(out), &evs), "output: %s", out)
	var raw []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &raw))
	for i := range evs {
		evs[i].Raw = raw[i]
	}
	return evs
}

func TestIntegrationRiemannClientSendAndQuery(t *testing.T) {
	srv := riemanntest.NewServer(t, riemanntest.WithUDP())

	riemannClient(t, append(sendArgs, "127.0.0.1", srv.Port())...)
	require.Equal(t, 1, srv.Count())
	checkSent(t, srv.Events()[0], "tcp")

	riemannClient(t, append(sendArgs, "-U", "127.0.0.1", srv.Port())...)
	require.NoError(t, srv.WaitFor(2, 5*time.Second))
	checkSent(t, srv.Events()[1], "udp")

	evs := query(t, `service = "api.requests"`, srv.Port())
	require.Len(t, evs, 1, "the index keeps the latest event per host and service")
	e := evs[0]
	t.Logf("riemann-client query -j: %v", e.Raw)
	require.Equal(t, "web1", e.Host)
	require.Equal(t, "api.requests", e.Service)
	require.Equal(t, "ok", e.State)
	require.Equal(t, 42.5, e.MetricD)
	require.Equal(t, 60.0, e.TTL)
	require.Equal(t, []string{"tag"}, e.Tags)
	require.Equal(t, "v", e.Attributes["k"])
	require.Equal(t, "riemann-c-client", e.Attributes["x-client"])
	require.WithinDuration(t, time.Now(), time.UnixMicro(e.TimeMicros), time.Minute, "the server filled in the time")

	require.Empty(t, query(t, `service = "nothing"`, srv.Port()))
	require.Len(t, query(t, `true`, srv.Port()), 1)
}

// TestIntegrationOurEventsReadByRiemannClient writes through our sink and
// reads the events back with the C client: our encoding is what a real
// client understands.
func TestIntegrationOurEventsReadByRiemannClient(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithTags("meterkit"))
	at := time.Now().Truncate(time.Microsecond)
	require.NoError(t, s.Write(context.Background(), []meter.Measurement{{
		Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 97.5, Time: at, Host: "web9", ResourceID: "cpu0",
		Labels: []meter.Label{{Key: "core", Value: "0"}, {Key: riemann.LabelState, Value: "critical"},
			{Key: riemann.LabelTTL, Value: "2.5"}, {Key: riemann.LabelDescription, Value: "hot"}},
	}}))
	evs := query(t, `service = "cpu.util" and state = "critical"`, srv.Port())
	require.Len(t, evs, 1)
	e := evs[0]
	t.Logf("riemann-client query -j: %v", e.Raw)
	require.Equal(t, "web9", e.Host)
	require.Equal(t, "critical", e.State)
	require.Equal(t, "hot", e.Description)
	require.Equal(t, 97.5, e.MetricD)
	require.Equal(t, 2.5, e.TTL, "fractional TTL survives")
	require.Equal(t, at.Unix(), e.Time)
	require.Equal(t, at.UnixMicro(), e.TimeMicros)
	require.Equal(t, []string{"meterkit"}, e.Tags)
	for k, v := range map[string]string{"core": "0", "unit": "%", "resource_id": "cpu0", "kind": "gauge"} {
		require.Equal(t, v, e.Attributes[k], k)
	}
}

func TestIntegrationRiemannClientTLS(t *testing.T) {
	pki := newTestPKI(t, "meterkit test CA")
	srv := riemanntest.NewServer(t, riemanntest.WithTLS(pki.serverTLS()))
	// One -o per option: the comma-separated form fails with "Unable to
	// connect: Invalid argument".
	opts := []string{"-G", "-o", "cafile=" + pki.caFile, "-o", "certfile=" + pki.certFile, "-o", "keyfile=" + pki.keyFile}
	riemannClient(t, append(append(sendArgs, opts...), "127.0.0.1", srv.Port())...)
	require.Equal(t, 1, srv.Count())
	checkSent(t, srv.Events()[0], "tls")

	out := riemannClient(t, append(append([]string{"query", "true", "-j"}, opts...), "127.0.0.1", srv.Port())...)
	require.Contains(t, out, `"api.requests"`)
}
