package riemann_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/riemann"
	"github.com/meterkit/meter/sink/riemann/riemanntest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.UTC)

func batchOf(n int) []meter.Measurement {
	b := make([]meter.Measurement, n)
	for i := range b {
		b[i] = meter.Measurement{
			Name: "svc." + strconv.Itoa(i), Kind: meter.Gauge, Unit: "%", Value: float64(i), Time: t0,
			Host: "web1", Labels: []meter.Label{{Key: "seq", Value: strconv.Itoa(i)}},
		}
	}
	return b
}

func newSink(t *testing.T, addr string, opts ...riemann.Option) *riemann.Sink {
	t.Helper()
	s, err := riemann.New(addr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func TestWriteMapsEveryField(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithTags("meterkit"), riemann.WithTTL(30*time.Second), riemann.WithDefaultHost("fallback"))
	batch := []meter.Measurement{
		{
			Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 97.25, Time: t0, Host: "web1",
			ResourceID: "cpu0", ProjectID: "p", UserID: "u",
			Labels: []meter.Label{
				{Key: "zone", Value: "eu"}, {Key: riemann.LabelState, Value: "critical"},
				{Key: riemann.LabelTTL, Value: "7.5"}, {Key: riemann.LabelDescription, Value: "hot"},
			},
		},
		{Name: "uptime", Kind: meter.Cumulative, Unit: "s", Value: 12, Time: t0},
	}
	require.NoError(t, s.Write(context.Background(), batch))
	require.NoError(t, srv.WaitFor(2, time.Second))

	evs := srv.Events()
	require.Len(t, evs, 2)
	e := evs[0]
	require.Equal(t, "web1", e.Host)
	require.Equal(t, "cpu.util", e.Service)
	require.Equal(t, "critical", e.State)
	require.Equal(t, "hot", e.Description)
	require.Equal(t, 97.25, e.Metric)
	require.Equal(t, t0, e.Time.UTC(), "time to the microsecond")
	require.Equal(t, t0.Unix(), e.Proto.GetTime())
	require.True(t, e.HasTTL)
	require.Equal(t, float32(7.5), e.TTL)
	require.Equal(t, []string{"meterkit"}, e.Tags)
	require.Equal(t, map[string]string{
		"zone": "eu", "unit": "%", "resource_id": "cpu0", "project_id": "p", "user_id": "u", "kind": "gauge",
	}, e.Attributes)
	require.Equal(t, "tcp", e.Transport)

	e = evs[1]
	require.Equal(t, "fallback", e.Host)
	require.Equal(t, "ok", e.State)
	require.Equal(t, float32(30), e.TTL)
	require.Equal(t, map[string]string{"unit": "s", "kind": "cumulative"}, e.Attributes)

	// The caller's batch is untouched.
	require.Empty(t, batch[1].Host)
}

func TestWriteSplitsBatches(t *testing.T) {
	for _, tc := range []struct {
		n, size int
		want    []int
	}{
		{n: 2500, want: []int{1000, 1000, 500}},
		{n: 1000, want: []int{1000}},
		{n: 1, want: []int{1}},
		{n: 7, size: 3, want: []int{3, 3, 1}},
		{n: 6, size: 3, want: []int{3, 3}},
	} {
		t.Run(fmt.Sprintf("%d by %d", tc.n, tc.size), func(t *testing.T) {
			srv := riemanntest.NewServer(t)
			var opts []riemann.Option
			if tc.size > 0 {
				opts = append(opts, riemann.WithBatchSize(tc.size))
			}
			s := newSink(t, srv.Addr(), opts...)
			require.NoError(t, s.Write(context.Background(), batchOf(tc.n)))
			require.Equal(t, tc.want, srv.MsgSizes())
			evs := srv.Events()
			require.Len(t, evs, tc.n)
			for i, e := range evs {
				require.Equal(t, strconv.Itoa(i), e.Attributes["seq"])
			}
		})
	}
}

func TestWriteEmptyBatchDoesNoIO(t *testing.T) {
	s := newSink(t, "127.0.0.1:1") // nothing listens there
	require.NoError(t, s.Write(context.Background(), nil))
}

func TestRefusedIsPermanent(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithBatchSize(2))

	srv.Reject("stream error: no thanks")
	err := s.Write(context.Background(), batchOf(3))
	require.Error(t, err)
	require.True(t, sink.IsPermanent(err), "%v", err)
	var ref *riemann.RefusedError
	require.ErrorAs(t, err, &ref)
	require.Equal(t, "stream error: no thanks", ref.Reason)
	require.Contains(t, err.Error(), "riemann: send 2 events to "+srv.Addr()+": server refused them: stream error: no thanks")
	require.Zero(t, srv.Count())

	// The connection is still good: the next Write goes through on it.
	srv.Reject("")
	require.NoError(t, s.Write(context.Background(), batchOf(3)))
	require.Equal(t, 3, srv.Count())
}

func TestPartlyRefused(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithBatchSize(2))
	srv.RejectNext(1, "index full")
	batch := batchOf(5)
	batch[4].Labels = append(batch[4].Labels, meter.Label{Key: riemann.LabelTTL, Value: "-1"})
	err := s.Write(context.Background(), batch)
	var pe *sink.PartialError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []int{0, 1, 4}, pe.Rejected)
	require.False(t, sink.IsPermanent(err), "partial as a whole")
	var ref *riemann.RefusedError
	require.ErrorAs(t, err, &ref)
	require.Equal(t, "index full", ref.Reason)
	require.Equal(t, 2, srv.Count())
	require.Equal(t, []int{2}, srv.MsgSizes())
}

func TestPartialError(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr())
	batch := batchOf(4)
	batch[2].Labels = append(batch[2].Labels, meter.Label{Key: riemann.LabelTTL, Value: "soon"})
	err := s.Write(context.Background(), batch)
	var pe *sink.PartialError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []int{2}, pe.Rejected)
	require.Contains(t, err.Error(), `measurement 2 (svc.2): label riemann.ttl: bad TTL "soon"`)
	require.Equal(t, 3, srv.Count())

	// Every measurement bad: the whole error is permanent.
	err = s.Write(context.Background(), batch[2:3])
	require.True(t, sink.IsPermanent(err), "%v", err)
}

func TestServerDownIsRetryable(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithTimeout(2*time.Second), riemann.WithDialTimeout(time.Second))
	ctx := context.Background()
	require.NoError(t, s.Write(ctx, batchOf(10)))

	srv.Stop()
	for range 2 { // the old connection fails, then the dial does
		err := s.Write(ctx, batchOf(10))
		require.Error(t, err)
		require.False(t, sink.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "riemann: send 10 events to "+srv.Addr())
	}

	require.NoError(t, srv.Start())
	require.NoError(t, s.Write(ctx, batchOf(10)), "reconnects without a new Sink")
	require.Equal(t, 20, srv.Count())
}

// TestNothingLostAcrossRestarts runs the publisher's loop (retry each batch
// until Write returns nil) while the server restarts and drops connections,
// and checks that every measurement arrived.
func TestNothingLostAcrossRestarts(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithBatchSize(50), riemann.WithTimeout(time.Second), riemann.WithDialTimeout(time.Second))

	const batches, size = 60, 120
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(7 * time.Millisecond):
			}
			if i%2 == 0 {
				srv.DropConnections()
			} else {
				srv.Stop()
				time.Sleep(5 * time.Millisecond)
				if err := srv.Start(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()

	failures := 0
	for b := range batches {
		batch := batchOf(size)
		for i := range batch {
			batch[i].Labels[0].Value = strconv.Itoa(b*size + i)
		}
		for attempt := 0; ; attempt++ {
			err := s.Write(context.Background(), batch)
			if err == nil {
				break
			}
			require.False(t, sink.IsPermanent(err), "%v", err)
			require.Less(t, attempt, 1000, "never succeeded: %v", err)
			failures++
			time.Sleep(time.Millisecond)
		}
	}
	close(done)
	wg.Wait()
	require.NoError(t, srv.Start())

	seen := map[string]bool{}
	for _, e := range srv.Events() {
		seen[e.Attributes["seq"]] = true
	}
	for i := range batches * size {
		require.True(t, seen[strconv.Itoa(i)], "measurement %d lost", i)
	}
	t.Logf("%d failed writes retried; %d events received for %d sent", failures, srv.Count(), batches*size)
	require.Positive(t, failures, "the test did not disturb anything")
}

func TestStalledServerTimesOut(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithTimeout(100*time.Millisecond))
	srv.Stall(0)
	err := s.Write(context.Background(), batchOf(3))
	require.Error(t, err)
	require.False(t, sink.IsPermanent(err))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "%v", err)
	srv.Release()

	require.NoError(t, s.Write(context.Background(), batchOf(3)))
	// The stalled Msg was handled after Release, then the retry: 6 at the server.
	require.NoError(t, srv.WaitFor(6, time.Second))
}

func TestContextEndsWrite(t *testing.T) {
	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr())
	require.NoError(t, s.Write(context.Background(), batchOf(1))) // connected

	srv.Stall(0)
	defer srv.Release()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := s.Write(ctx, batchOf(3))
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, sink.IsPermanent(err))
	require.Less(t, time.Since(start), 5*time.Second)

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = s.Write(ctx, batchOf(3))
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.ErrorIs(t, s.Write(ctx, batchOf(3)), context.DeadlineExceeded, "ctx already done")
}

func TestDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	s, err := riemann.New(addr)
	require.NoError(t, err)
	err = s.Write(context.Background(), batchOf(2))
	require.ErrorContains(t, err, "riemann: send 2 events to "+addr+": dial tcp "+addr)
	require.False(t, sink.IsPermanent(err))
	require.NoError(t, s.Close(context.Background()))
	require.NoError(t, s.Close(context.Background()))
	require.ErrorIs(t, s.Write(context.Background(), batchOf(1)), sink.ErrClosed)
}

func TestClose(t *testing.T) {
	srv := riemanntest.NewServer(t)
	ctx := context.Background()

	s, err := riemann.New(srv.Addr())
	require.NoError(t, err)
	require.NoError(t, s.Close(ctx), "never connected")
	require.NoError(t, s.Close(ctx))

	s, err = riemann.New(srv.Addr())
	require.NoError(t, err)
	require.NoError(t, s.Write(ctx, batchOf(1)))
	require.NoError(t, s.Close(ctx))
	require.NoError(t, s.Close(ctx))
	require.ErrorIs(t, s.Write(ctx, batchOf(1)), sink.ErrClosed)
}

func TestTLS(t *testing.T) {
	pki := newTestPKI(t, "meterkit test CA")
	other := newTestPKI(t, "another CA")
	srv := riemanntest.NewServer(t, riemanntest.WithTLS(pki.serverTLS()))

	good := &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}
	for _, tc := range []struct {
		name    string
		addr    string
		cfg     *tls.Config
		wantErr string
	}{
		{name: "client certificate", cfg: good},
		{name: "server name", addr: "localhost:" + srv.Port(), cfg: &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}, ServerName: "riemann.test"}},
		{name: "no client certificate", cfg: &tls.Config{RootCAs: pki.pool}, wantErr: "certificate required"},
		{name: "client certificate from another CA", cfg: &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{other.client}}, wantErr: "tls: "},
		{name: "unknown server CA", cfg: &tls.Config{RootCAs: other.pool, Certificates: []tls.Certificate{pki.client}}, wantErr: "tls handshake with"},
		{name: "wrong server name", cfg: &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}, ServerName: "elsewhere"}, wantErr: "elsewhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.Reset()
			addr := tc.addr
			if addr == "" {
				addr = srv.Addr()
			}
			s := newSink(t, addr, riemann.WithTLS(tc.cfg), riemann.WithTimeout(2*time.Second))
			err := s.Write(context.Background(), batchOf(3))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.False(t, sink.IsPermanent(err))
				require.Zero(t, srv.Count())
				return
			}
			require.NoError(t, err)
			require.Equal(t, 3, srv.Count())
			require.Equal(t, "tls", srv.Events()[0].Transport)
		})
	}

	t.Run("URL", func(t *testing.T) {
		srv.Reset()
		u := fmt.Sprintf("riemann+tls://localhost:%s?ca=%s&cert=%s&key=%s&server_name=riemann.test",
			srv.Port(), pki.caFile, pki.certFile, pki.keyFile)
		s, err := sink.Open(context.Background(), u)
		require.NoError(t, err)
		defer s.Close(context.Background())
		require.NoError(t, s.Write(context.Background(), batchOf(2)))
		require.Equal(t, 2, srv.Count())
	})
}

func TestUDP(t *testing.T) {
	srv := riemanntest.NewServer(t, riemanntest.WithUDP())
	s := newSink(t, srv.UDPAddr(), riemann.WithUDP())

	// About 1.1 KiB per event: 14 fit in a 16 KiB datagram.
	big := strings.Repeat("x", 1024)
	batch := batchOf(100)
	for i := range batch {
		batch[i].Labels = append(batch[i].Labels, meter.Label{Key: "pad", Value: big})
	}
	require.NoError(t, s.Write(context.Background(), batch))
	require.NoError(t, srv.WaitFor(100, 2*time.Second))
	sizes := srv.MsgSizes()
	require.Greater(t, len(sizes), 100/15, "%v", sizes)
	total := 0
	for _, n := range sizes {
		require.LessOrEqual(t, n, 15)
		total += n
	}
	require.Equal(t, 100, total)
	require.Equal(t, "udp", srv.Events()[0].Transport)

	// An event that cannot fit any datagram is refused by name; the rest go.
	srv.Reset()
	huge := batchOf(3)
	for i := range 20 {
		huge[1].Labels = append(huge[1].Labels, meter.Label{Key: "k" + strconv.Itoa(i), Value: big})
	}
	err := s.Write(context.Background(), huge)
	var pe *sink.PartialError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []int{1}, pe.Rejected)
	require.ErrorContains(t, err, "measurement 1 (svc.1): event of")
	require.ErrorContains(t, err, "does not fit in a datagram of 16384")
	require.NoError(t, srv.WaitFor(2, 2*time.Second))

	err = s.Write(context.Background(), huge[1:2])
	require.True(t, sink.IsPermanent(err), "%v", err)
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr string
		opts []riemann.Option
		want string
	}{
		{name: "empty address", addr: "", want: "no host"},
		{name: "no host", addr: ":5555", want: "no host"},
		{name: "batch", addr: "h", opts: []riemann.Option{riemann.WithBatchSize(-1)}, want: "WithBatchSize: negative count -1"},
		{name: "timeout", addr: "h", opts: []riemann.Option{riemann.WithTimeout(-1)}, want: "WithTimeout: negative duration -1ns"},
		{name: "dial timeout", addr: "h", opts: []riemann.Option{riemann.WithDialTimeout(-1)}, want: "WithDialTimeout"},
		{name: "ttl", addr: "h", opts: []riemann.Option{riemann.WithTTL(-time.Second)}, want: "WithTTL: negative duration -1s"},
		{name: "nil tls", addr: "h", opts: []riemann.Option{riemann.WithTLS(nil)}, want: "nil"},
		{name: "tls and udp", addr: "h", opts: []riemann.Option{riemann.WithTLS(&tls.Config{}), riemann.WithUDP()}, want: "exclude"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := riemann.New(tc.addr, tc.opts...)
			require.ErrorContains(t, err, tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "riemann: "), err.Error())
		})
	}
	s, err := riemann.New("riemann.example")
	require.NoError(t, err)
	require.Equal(t, "riemann.example:5555", s.Addr())
	s, err = riemann.New("[::1]")
	require.NoError(t, err)
	require.Equal(t, "[::1]:5555", s.Addr())
}

func TestOpenURL(t *testing.T) {
	srv := riemanntest.NewServer(t, riemanntest.WithUDP())
	ctx := context.Background()
	for _, tc := range []struct {
		url  string
		want string // error text; "" for success
	}{
		{url: "riemann://" + srv.Addr() + "?ttl=2.5&tag=a&tag=b&host=h1&state=info&batch=10&timeout=1s&dial_timeout=500ms"},
		{url: "riemann+udp://" + srv.UDPAddr() + "?ttl=1m"},
		{url: "riemann://" + srv.Addr() + "/"},
		{url: "riemann://", want: "no host:port"},
		{url: "riemann://" + srv.Addr() + "?ttl=abc", want: `parameter ttl: bad TTL "abc"`},
		{url: "riemann://" + srv.Addr() + "?batch=0", want: `parameter batch: "0" is not a whole number >= 1`},
		{url: "riemann://" + srv.Addr() + "?timeout=5", want: `parameter timeout: "5" is not a positive duration`},
		{url: "riemann://" + srv.Addr() + "?ca=x", want: `unknown parameter "ca" for riemann://`},
		{url: "riemann://" + srv.Addr() + "?ttl=1&ttl=2", want: `parameter "ttl" given 2 times`},
		{url: "riemann://" + srv.Addr() + "/path", want: "no user or path"},
		{url: "riemann+tls://" + srv.Addr() + "?ca=/nonexistent", want: "parameter ca: open /nonexistent"},
		{url: "riemann+tls://" + srv.Addr() + "?cert=/x", want: "cert and key go together"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			s, err := sink.Open(ctx, tc.url)
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			require.NoError(t, s.Close(ctx))
		})
	}

	// The parameters take effect.
	s, err := sink.Open(ctx, "riemann://"+srv.Addr()+"?ttl=2.5&tag=a&tag=b&host=h1&state=info&batch=2")
	require.NoError(t, err)
	defer s.Close(ctx)
	b := batchOf(3)
	for i := range b {
		b[i].Host = ""
	}
	require.NoError(t, s.Write(ctx, b))
	require.Equal(t, []int{2, 1}, srv.MsgSizes())
	e := srv.Events()[0]
	require.Equal(t, "h1", e.Host)
	require.Equal(t, "info", e.State)
	require.Equal(t, float32(2.5), e.TTL)
	require.Equal(t, []string{"a", "b"}, e.Tags)
}

func TestRefusedErrorText(t *testing.T) {
	err := &riemann.RefusedError{Addr: "10.0.0.5:5555", Events: 500, Reason: "boom"}
	require.Equal(t, "riemann: send 500 events to 10.0.0.5:5555: server refused them: boom", err.Error())
	require.False(t, errors.Is(err, sink.ErrClosed))
}
