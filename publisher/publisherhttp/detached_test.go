package publisherhttp_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/publisher/publisherhttp"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

// The lane of a sink no longer configured is on /metrics, and does not
// make the publisher unready.
func TestDetachedLaneOnMetrics(t *testing.T) {
	_, r := transport.Pipe()
	var a, b sink.Recorder
	p, err := publisher.New(r, publisher.WithSink("a", &a), publisher.WithSink("b", &b), publisher.WithSpool(t.TempDir()),
		publisher.WithStatsInterval(publisher.NoStats))
	require.NoError(t, err)
	defer p.Close(context.Background())
	require.NoError(t, p.Reconfigure(context.Background(), publisher.WithSink("a", &a)))
	srv := publisherhttp.New(p)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	require.Contains(t, body, "meterkit_sink_detached{sink=\"a\"} 0\n")
	require.Contains(t, body, "meterkit_sink_detached{sink=\"b\"} 1\n")
	require.Contains(t, body, "meterkit_sink_pending{sink=\"b\"} 0\n")
}
