package publisher_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/web"
	"github.com/meterkit/meter/transport/nanomsg"
)

// freeLoopback returns an address on 127.0.0.1 that was free a moment ago.
func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tcpPublisher runs a publisher with sinks on a real nanomsg TCP listener
// and returns its address and the channel Run's error arrives on.
func tcpPublisher(t *testing.T, opts ...publisher.Option) (string, *publisher.Publisher, context.CancelFunc, chan error) {
	t.Helper()
	nr, err := nanomsg.Listen("tcp://127.0.0.1:0", nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	p, err := publisher.New(nr, append([]publisher.Option{publisher.WithLogger(quiet)}, opts...)...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return nr.Addr(), p, cancel, done
}

// Run starts a web sink, wrapped as a program may wrap it, before any
// batch: the page and the API answer at once; the first batch shows; Close
// stops the server.
func TestRunStartsSinksBeforeTheFirstBatch(t *testing.T) {
	view := freeLoopback(t)
	w, err := web.New(web.WithAddr(view))
	require.NoError(t, err)
	var wrote sync.Map
	wrapped := sink.Wrap(w, func(ctx context.Context, b []meter.Measurement, next sink.WriteFunc) error {
		wrote.Store("yes", true)
		return next(ctx, b)
	})
	addr, p, cancel, done := tcpPublisher(t, publisher.WithSink("view", wrapped))

	base := "http://" + view + "/"
	require.Eventually(t, func() bool { c, _ := getBody(t, base); return c == 200 }, 5*time.Second, 10*time.Millisecond,
		"the page is served before any batch")
	code, body := getBody(t, base+"api/series")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"series":[],"position":0}`, body)
	_, any := wrote.Load("yes")
	require.False(t, any, "no batch was written: Run started the server")

	snd, err := nanomsg.Dial([]string{addr}, nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	defer snd.Close()
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	require.NoError(t, snd.Send(ctx, envelope(1, gauge("cpu.user", 3))))
	var got struct {
		Series []struct {
			Name string `json:"name"`
			Host string `json:"host"`
		} `json:"series"`
	}
	_, body = getBody(t, base+"api/series")
	require.NoError(t, json.Unmarshal([]byte(body), &got), body)
	require.Len(t, got.Series, 1, body)
	require.Equal(t, "cpu.user", got.Series[0].Name)

	time.Sleep(100 * time.Millisecond) // let handshakes finish (a mangos race at Close)
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, p.Close(context.Background()))
	_, err = net.DialTimeout("tcp", view, time.Second)
	require.Error(t, err, "Close stopped the server")
}

// A sink that cannot start fails Run before it receives, naming the sink;
// the sinks started before it are stopped by Close.
func TestRunFailsWhenASinkCannotStart(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	first, err := web.New(web.WithAddr(freeLoopback(t)))
	require.NoError(t, err)
	second, err := web.New(web.WithAddr(taken.Addr().String()))
	require.NoError(t, err)
	var rec sink.Recorder
	addr, p, cancel, done := tcpPublisher(t, publisher.WithSink("first", first), publisher.WithSink("rec", &rec),
		publisher.WithSink("second", second))
	defer cancel()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	require.ErrorIs(t, runErr, publisher.ErrSinkStart)
	require.ErrorContains(t, runErr, `sink "second"`)
	require.ErrorContains(t, runErr, "address already in use")
	require.False(t, p.Serving())
	require.NotEmpty(t, first.Addr(), "the first sink was started")

	// Nothing receives: a batch sent is not answered.
	snd, err := nanomsg.Dial([]string{addr}, nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	defer snd.Close()
	ctx, stop := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer stop()
	require.Error(t, snd.Send(ctx, envelope(1, gauge("a", 1))))
	require.Zero(t, rec.Len())

	require.NoError(t, p.Close(context.Background()))
	_, err = net.DialTimeout("tcp", first.Addr(), time.Second)
	require.Error(t, err, "Close stopped the sink that started")
}

// A web sink added by Reconfigure while Run runs serves before its first
// batch; one that cannot start fails Reconfigure, which changes nothing;
// one replaced in place starts once the one it replaces is closed.
func TestReconfigureStartsAddedSinks(t *testing.T) {
	var rec sink.Recorder
	var logs lockedBuffer
	_, p, cancel, done := tcpPublisher(t, publisher.WithSink("rec", &rec),
		publisher.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.Eventually(t, p.Serving, 5*time.Second, 5*time.Millisecond)
	view := freeLoopback(t)
	w, err := web.New(web.WithAddr(view))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, p.Reconfigure(ctx, publisher.WithSink("rec", &rec), publisher.WithSink("view", w)))
	code, _ := getBody(t, "http://"+view+"/")
	require.Equal(t, 200, code, "served before its first batch")

	// Replaced in place by one on the same address (a reload that changed
	// max_bytes): the old one is closed first, so the new one can bind.
	w1, err := web.New(web.WithAddr(view), web.WithMaxBytes(1<<20))
	require.NoError(t, err)
	require.NoError(t, p.Reconfigure(ctx, publisher.WithSink("rec", &rec), publisher.WithSink("view", w1)))
	require.Equal(t, view, w1.Addr(), "the new sink serves")
	code, _ = getBody(t, "http://"+view+"/")
	require.Equal(t, 200, code)
	w = w1

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	w2, err := web.New(web.WithAddr(taken.Addr().String()))
	require.NoError(t, err)
	err = p.Reconfigure(ctx, publisher.WithSink("rec", &rec), publisher.WithSink("view", w), publisher.WithSink("view2", w2))
	require.ErrorIs(t, err, publisher.ErrSinkStart)
	require.ErrorContains(t, err, `sink "view2"`)
	names := func() []string {
		var n []string
		for _, s := range p.SinkStats() {
			n = append(n, s.Name)
		}
		return n
	}
	require.Equal(t, []string{"rec", "view"}, names(), "a refused Reconfigure changes nothing")
	require.NoError(t, w2.Close(ctx), "what a refused Reconfigure did not take is the caller's")

	// One that replaces another and cannot start is logged and stays.
	w3, err := web.New(web.WithAddr(taken.Addr().String()))
	require.NoError(t, err)
	require.NoError(t, p.Reconfigure(ctx, publisher.WithSink("rec", &rec), publisher.WithSink("view", w3)))
	require.Equal(t, []string{"rec", "view"}, names())
	require.Contains(t, logs.String(), `sink replaced in place could not start`)
	require.Contains(t, logs.String(), `sink=view`)
	_, err = net.DialTimeout("tcp", view, time.Second)
	require.Error(t, err, "the sink it replaced was closed")

	cancel()
	require.NoError(t, <-done)
	require.NoError(t, p.Close(ctx))
}

// ctxStarter is a sink whose Start heeds its ctx, as one that resolves a
// name does.
type ctxStarter struct{ sink.Recorder }

func (s *ctxStarter) Start(ctx context.Context) error { return ctx.Err() }

// Run with a ctx that ended returns nil, as it does without sinks to
// start, even when the start of a sink was cut short by it.
func TestRunWithEndedCtxDoesNotFailTheStart(t *testing.T) {
	nr, err := nanomsg.Listen("tcp://127.0.0.1:0", nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	p, err := publisher.New(nr, publisher.WithLogger(quiet), publisher.WithSink("s", &ctxStarter{}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, p.Run(ctx))
	require.NoError(t, p.Close(context.Background()))
}
