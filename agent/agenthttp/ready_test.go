package agenthttp_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/agent/agenthttp"
	"github.com/meterkit/meter/transport/nanomsg"
)

// metricValue reads one sample of an unlabelled metric from /metrics.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics")
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatalf("%s not in /metrics", name)
	return 0
}

// Readiness follows the age of the oldest unacknowledged batch: with the
// publisher down, a batch younger than the stale time leaves the agent
// ready (though nothing leaves the queue), and the same batch past it makes
// it unready; meterkit_agent_oldest_batch_age_seconds shows the age.
func TestReadyFollowsTheOldestBatch(t *testing.T) {
	ns, err := nanomsg.Dial([]string{"tcp://" + freeAddr(t)})
	require.NoError(t, err)
	a, err := agent.New(ns, agent.WithBatch(1, 10*time.Millisecond), agent.WithSendTimeout(100*time.Millisecond),
		agent.WithBackoff(10*time.Millisecond, 50*time.Millisecond), agent.WithStatsInterval(agent.NoStats))
	require.NoError(t, err)
	const stale = 1500 * time.Millisecond
	srv := agenthttp.New(a, agenthttp.WithStaleAfter(stale))
	require.NoError(t, srv.Listen("127.0.0.1:0"))
	base := "http://" + srv.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, srv.Run(ctx)) })
	wg.Go(func() { _ = a.Run(ctx) })
	defer func() {
		cancel()
		require.NoError(t, a.Close(context.Background()))
		wg.Wait()
	}()

	require.Zero(t, metricValue(t, base, "meterkit_agent_oldest_batch_age_seconds"))
	added := time.Now()
	require.NoError(t, a.Add(meter.Measurement{Name: "test.n", Kind: meter.Gauge, Value: 1, Host: "h", Time: added}))
	require.Eventually(t, func() bool { return a.Stats().Resent > 0 || a.Stats().Queued > 0 }, 5*time.Second, 5*time.Millisecond)
	code, body := get(t, base+"/readyz")
	if time.Since(added) < stale {
		require.Equal(t, 200, code, "a young batch waits: still ready: %s", body)
	}
	require.Greater(t, metricValue(t, base, "meterkit_agent_oldest_batch_age_seconds"), 0.0)
	require.Eventually(t, func() bool { code, body = get(t, base+"/readyz"); return code == 503 }, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, body, "the oldest unacknowledged batch is ")
	require.GreaterOrEqual(t, time.Since(added), stale, "unready only past the stale time")
	require.GreaterOrEqual(t, metricValue(t, base, "meterkit_agent_oldest_batch_age_seconds"), stale.Seconds())
}
