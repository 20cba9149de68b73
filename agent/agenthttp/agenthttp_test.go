package agenthttp_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/agent/agenthttp"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// An agent whose publisher is down is unready once batches have waited
// past the stale time, and ready again when the publisher comes up and
// takes them; /metrics counts what was acknowledged, from the struct tags.
func TestReadyFollowsTheQueue(t *testing.T) {
	pubAddr := "tcp://" + freeAddr(t)
	ns, err := nanomsg.Dial([]string{pubAddr})
	require.NoError(t, err)
	a, err := agent.New(ns, agent.WithBatch(1, 10*time.Millisecond), agent.WithSendTimeout(100*time.Millisecond),
		agent.WithBackoff(10*time.Millisecond, 50*time.Millisecond), agent.WithStatsInterval(agent.NoStats))
	require.NoError(t, err)
	srv := agenthttp.New(a, agenthttp.WithStaleAfter(300*time.Millisecond),
		agenthttp.WithStats("meterkit_transport_", nanomsg.SenderStats{}, func() any { return ns.Stats() }))
	require.NoError(t, srv.Listen("127.0.0.1:0"))
	base := "http://" + srv.Addr().String()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, srv.Run(ctx)) })
	wg.Go(func() { _ = a.Run(ctx) })

	code, body := get(t, base+"/healthz")
	require.Equal(t, 200, code, body)
	code, body = get(t, base+"/readyz")
	require.Equal(t, 200, code, body)

	now := time.Now()
	for i := range 3 {
		require.NoError(t, a.Add(meter.Measurement{Name: "test.n", Kind: meter.Gauge, Value: float64(i), Host: "h", Time: now}))
	}
	require.Eventually(t, func() bool { code, body = get(t, base+"/readyz"); return code == 503 }, 5*time.Second, 20*time.Millisecond)
	require.Contains(t, body, "the oldest unacknowledged batch is ")

	// The publisher comes up: it acknowledges everything.
	r, err := nanomsg.Listen(pubAddr)
	require.NoError(t, err)
	rctx, stopR := context.WithCancel(context.Background())
	wg.Go(func() {
		for {
			d, err := r.Receive(rctx)
			if err != nil {
				return
			}
			_ = d.Ack(transport.Ack{Status: transport.StatusOK})
		}
	})
	require.Eventually(t, func() bool { code, body = get(t, base+"/readyz"); return code == 200 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, uint64(3), a.Stats().AckedMeasurements)

	code, body = get(t, base+"/metrics")
	require.Equal(t, 200, code)
	for _, want := range []string{
		"# TYPE meterkit_agent_acked_total counter\nmeterkit_agent_acked_total 3\n",
		"# TYPE meterkit_agent_acked_batches_total counter\nmeterkit_agent_acked_batches_total 3\n",
		"# TYPE meterkit_agent_queued_batches gauge\nmeterkit_agent_queued_batches 0\n",
		"# TYPE meterkit_agent_refused gauge\nmeterkit_agent_refused 0\n",
		"# TYPE meterkit_transport_acked_total counter\nmeterkit_transport_acked_total 3\n",
		"# TYPE go_goroutines gauge\n",
		"# TYPE process_resident_memory_bytes gauge\n",
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "meterkit_agent_queued_batches_total")

	cancel()
	stopR()
	require.NoError(t, a.Close(context.Background()))
	require.NoError(t, r.Close())
	wg.Wait()
	// The server stopped with ctx.
	_, err = http.Get(base + "/healthz")
	require.Error(t, err)
}

// A port in use is an error from Listen, before anything runs.
func TestListenPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	ns, err := nanomsg.Dial([]string{"tcp://" + freeAddr(t)})
	require.NoError(t, err)
	a, err := agent.New(ns)
	require.NoError(t, err)
	defer a.Close(context.Background())
	err = agenthttp.New(a).Listen(ln.Addr().String())
	require.ErrorContains(t, err, "agenthttp: listen tcp")
	require.True(t, strings.Contains(err.Error(), "address already in use"), err)
}
