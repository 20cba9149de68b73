package agenthttp_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/agent/agenthttp"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/rate"
	"github.com/meterkit/meter/transport"
)

// /metrics has each stage's counters, labelled with its name; series is a
// gauge.
func TestMetricsPerStage(t *testing.T) {
	r, err := rate.New(rate.Config{Meters: stage.MustCompileMeters("c"), As: "c.rate"})
	require.NoError(t, err)
	s, recv := transport.Pipe()
	defer recv.Close()
	a, err := agent.New(s, agent.WithStage(stage.Named("cpu_rate", r)), agent.WithStatsInterval(agent.NoStats))
	require.NoError(t, err)
	defer a.Close(context.Background())
	t0 := time.Now().Add(-time.Minute)
	for i, v := range []float64{100, 110, 5} {
		require.NoError(t, a.Add(meter.Measurement{Name: "c", Kind: meter.Cumulative, Unit: "B", Value: v, Host: "h",
			Time: t0.Add(time.Duration(i) * 10 * time.Second)}))
	}
	srv := httptest.NewServer(agenthttp.New(a).Handler())
	defer srv.Close()
	code, body := get(t, srv.URL+"/metrics")
	require.Equal(t, 200, code)
	for _, want := range []string{
		"# TYPE meterkit_stage_in_total counter\nmeterkit_stage_in_total{stage=\"cpu_rate\"} 3\n",
		"# TYPE meterkit_stage_out_total counter\nmeterkit_stage_out_total{stage=\"cpu_rate\"} 4\n",
		"# TYPE meterkit_stage_resets_total counter\nmeterkit_stage_resets_total{stage=\"cpu_rate\"} 1\n",
		"# TYPE meterkit_stage_series gauge\nmeterkit_stage_series{stage=\"cpu_rate\"} 1\n",
		"meterkit_stage_late_total{stage=\"cpu_rate\"} 0\n",
	} {
		require.Contains(t, body, want)
	}
}
