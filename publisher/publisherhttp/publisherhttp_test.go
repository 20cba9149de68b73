package publisherhttp_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/publisher/publisherhttp"
	"github.com/meterkit/meter/sink"
	_ "github.com/meterkit/meter/sink/riemann"
	"github.com/meterkit/meter/sink/riemann/riemanntest"
	"github.com/meterkit/meter/transport/nanomsg"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// A spooling publisher whose Riemann store goes down is unready while the
// sink's lane holds batches it fails to write, and ready again once the
// store is back and the lane drained; /metrics shows the per-sink figures.
func TestReadyFollowsTheStore(t *testing.T) {
	store := riemanntest.NewServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs, err := sink.Open(ctx, "riemann://"+store.Addr())
	require.NoError(t, err)
	r, err := nanomsg.Listen("tcp://127.0.0.1:0")
	require.NoError(t, err)
	p, err := publisher.New(r, publisher.WithSink("store", rs), publisher.WithSpool(t.TempDir()),
		publisher.WithBackoff(10*time.Millisecond, 50*time.Millisecond), publisher.WithStatsInterval(publisher.NoStats))
	require.NoError(t, err)
	srv := publisherhttp.New(p,
		publisherhttp.WithStats("meterkit_transport_", nanomsg.ReceiverStats{}, func() any { return r.Stats() }))
	require.NoError(t, srv.Listen("127.0.0.1:0"))
	base := "http://" + srv.Addr().String()

	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, srv.Run(ctx)) })
	code, body := get(t, base+"/readyz")
	require.Equal(t, 503, code, "not receiving yet")
	require.Contains(t, body, "not receiving")
	code, _ = get(t, base+"/healthz")
	require.Equal(t, 200, code)

	pctx, stopP := context.WithCancel(ctx)
	wg.Go(func() { _ = p.Run(pctx) })
	require.Eventually(t, func() bool { code, _ = get(t, base+"/readyz"); return code == 200 }, 5*time.Second, 10*time.Millisecond)

	ns, err := nanomsg.Dial([]string{r.Addr()})
	require.NoError(t, err)
	a, err := agent.New(ns, agent.WithBatch(1, 10*time.Millisecond), agent.WithStatsInterval(agent.NoStats))
	require.NoError(t, err)
	actx, stopA := context.WithCancel(ctx)
	wg.Go(func() { _ = a.Run(actx) })
	add := func(n int) {
		for i := range n {
			require.NoError(t, a.Add(meter.Measurement{Name: "test.n", Kind: meter.Gauge, Value: float64(i), Host: "h", Time: time.Now()}))
		}
	}
	add(2)
	require.NoError(t, store.WaitFor(2, 5*time.Second))

	store.Stop()
	add(3)
	require.Eventually(t, func() bool { code, body = get(t, base+"/readyz"); return code == 503 }, 5*time.Second, 10*time.Millisecond)
	require.Contains(t, body, `sink "store": its last write failed and`)
	_, body = get(t, base+"/metrics")
	require.Contains(t, body, "meterkit_sink_failing{sink=\"store\"} 1\n")
	require.Regexp(t, `meterkit_sink_pending\{sink="store"\} [1-3]\n`, body)

	require.NoError(t, store.Start())
	require.Eventually(t, func() bool { code, body = get(t, base+"/readyz"); return code == 200 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, store.WaitFor(5, 5*time.Second))
	require.Eventually(t, func() bool { return p.SinkStats()[0].Pending == 0 }, 5*time.Second, 10*time.Millisecond)

	_, body = get(t, base+"/metrics")
	for _, want := range []string{
		"# TYPE meterkit_publisher_written_total counter\nmeterkit_publisher_written_total 5\n",
		"# TYPE meterkit_publisher_pending gauge\nmeterkit_publisher_pending 0\n",
		"# TYPE meterkit_sink_written_total counter\nmeterkit_sink_written_total{sink=\"store\"} 5\n",
		"meterkit_sink_pending{sink=\"store\"} 0\n",
		"meterkit_sink_failing{sink=\"store\"} 0\n",
		"# TYPE meterkit_sink_last_success_timestamp_seconds gauge\n",
		"# TYPE meterkit_transport_acked_o_k_total counter\nmeterkit_transport_acked_o_k_total 5\n",
		"# TYPE go_goroutines gauge\n",
	} {
		require.Contains(t, body, want)
	}
	require.Regexp(t, `meterkit_sink_errors_total\{sink="store"\} [1-9]`, body)
	st := p.SinkStats()[0]
	require.Equal(t, "store", st.Name)
	require.True(t, st.Lane)
	require.False(t, st.Failing)
	require.WithinDuration(t, time.Now(), st.LastSuccess, 5*time.Second)

	stopA()
	require.NoError(t, a.Close(context.Background()))
	stopP()
	require.NoError(t, p.Close(context.Background()))
	cancel()
	wg.Wait()
}

// Without a spool a failing sink makes the publisher unready at once: the
// agents are answered "retry".
func TestReadyWithoutSpool(t *testing.T) {
	store := riemanntest.NewServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs, err := sink.Open(ctx, "riemann://"+store.Addr())
	require.NoError(t, err)
	r, err := nanomsg.Listen("tcp://127.0.0.1:0")
	require.NoError(t, err)
	p, err := publisher.New(r, publisher.WithSink("store", rs), publisher.WithStatsInterval(publisher.NoStats))
	require.NoError(t, err)
	srv := publisherhttp.New(p)
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.Run(ctx) })
	require.Eventually(t, func() bool { return srv.Ready() == nil }, 5*time.Second, 10*time.Millisecond)
	store.Stop()
	ns, err := nanomsg.Dial([]string{r.Addr()})
	require.NoError(t, err)
	a, err := agent.New(ns, agent.WithBatch(1, 10*time.Millisecond), agent.WithStatsInterval(agent.NoStats))
	require.NoError(t, err)
	actx, stopA := context.WithCancel(ctx)
	wg.Go(func() { _ = a.Run(actx) })
	require.NoError(t, a.Add(meter.Measurement{Name: "test.n", Kind: meter.Gauge, Value: 1, Host: "h", Time: time.Now()}))
	require.Eventually(t, func() bool { return srv.Ready() != nil }, 5*time.Second, 10*time.Millisecond)
	require.ErrorContains(t, srv.Ready(), `publisherhttp: sink "store": its last write failed`)
	require.NoError(t, store.Start())
	require.Eventually(t, func() bool { return srv.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, store.WaitFor(1, 5*time.Second))
	stopA()
	require.NoError(t, a.Close(context.Background()))
	cancel()
	require.NoError(t, p.Close(context.Background()))
	wg.Wait()
	require.Nil(t, srv.Addr())
	require.NoError(t, srv.Run(ctx), "without Listen Run returns at once")
}
