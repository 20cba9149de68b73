package publisherhttp_test

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/publisher/publisherhttp"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/levels"
	"github.com/meterkit/meter/transport"
)

// /metrics has each stage's counters, labelled with its name.
func TestMetricsPerStage(t *testing.T) {
	warn := 10.0
	l, err := levels.New(levels.Config{Meters: stage.MustCompileMeters("cpu.util"), Warning: &warn})
	require.NoError(t, err)
	s, r := transport.Pipe()
	var rec sink.Recorder
	p, err := publisher.New(r, publisher.WithSink("rec", &rec), publisher.WithSpool(t.TempDir()),
		publisher.WithStage(stage.Named("cpu_levels", l)), publisher.WithStatsInterval(publisher.NoStats))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	require.NoError(t, s.Send(ctx, &transport.Envelope{Version: transport.Version, Agent: "a", Seq: 1, SentAt: time.Now(),
		Measurements: []meter.Measurement{{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 50, Host: "h", Time: time.Now()}}}))
	require.Eventually(t, func() bool { return rec.Len() == 2 }, 5*time.Second, time.Millisecond)

	srv := httptest.NewServer(publisherhttp.New(p).Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	for _, want := range []string{
		"# TYPE meterkit_stage_in_total counter\nmeterkit_stage_in_total{stage=\"cpu_levels\"} 1\n",
		"meterkit_stage_out_total{stage=\"cpu_levels\"} 2\n",
		"# TYPE meterkit_stage_series gauge\nmeterkit_stage_series{stage=\"cpu_levels\"} 1\n",
	} {
		require.Contains(t, string(b), want)
	}
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, p.Close(context.Background()))
}
