package riemann

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/riemann/riemanntest"
)

// The option convention: zero means the package default for counts and
// durations, a negative value is an error from New that names the option,
// and an "off" that matters is a named constant (NoTTL).
func TestOptionConvention(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []Option
		check func(t *testing.T, c config)
		err   string // the whole error text; "" for success
	}{
		{name: "no options", check: func(t *testing.T, c config) {
			require.Equal(t, DefaultBatchSize, c.batch)
			require.Equal(t, DefaultTimeout, c.timeout)
			require.Equal(t, DefaultDialTimeout, c.dialTimeout)
			require.Equal(t, DefaultTTL, c.ttl)
			require.Zero(t, c.receipts, "no receipts without WithReceipts")
		}},
		{name: "zero", opts: []Option{
			WithBatchSize(3), WithBatchSize(0), WithTimeout(time.Second), WithTimeout(0),
			WithDialTimeout(time.Second), WithDialTimeout(0), WithTTL(time.Second), WithTTL(0), WithReceipts(0),
		}, check: func(t *testing.T, c config) {
			require.Equal(t, DefaultBatchSize, c.batch)
			require.Equal(t, DefaultTimeout, c.timeout)
			require.Equal(t, DefaultDialTimeout, c.dialTimeout)
			require.Equal(t, DefaultTTL, c.ttl)
			require.Equal(t, DefaultReceiptTTL, c.receipts)
		}},
		{name: "set", opts: []Option{
			WithBatchSize(3), WithTimeout(time.Second), WithDialTimeout(2 * time.Second), WithTTL(1500 * time.Millisecond), WithReceipts(time.Minute),
		}, check: func(t *testing.T, c config) {
			require.Equal(t, 3, c.batch)
			require.Equal(t, time.Second, c.timeout)
			require.Equal(t, 2*time.Second, c.dialTimeout)
			require.Equal(t, 1500*time.Millisecond, c.ttl)
			require.Equal(t, time.Minute, c.receipts)
		}},
		{name: "NoTTL", opts: []Option{WithTTL(NoTTL)}, check: func(t *testing.T, c config) { require.Equal(t, NoTTL, c.ttl) }},
		{name: "negative batch", opts: []Option{WithBatchSize(-2)}, err: "riemann: WithBatchSize: negative count -2"},
		{name: "negative timeout", opts: []Option{WithTimeout(-time.Second)}, err: "riemann: WithTimeout: negative duration -1s"},
		{name: "negative dial timeout", opts: []Option{WithDialTimeout(-time.Second)}, err: "riemann: WithDialTimeout: negative duration -1s"},
		{name: "negative ttl", opts: []Option{WithTTL(-time.Second)}, err: "riemann: WithTTL: negative duration -1s (NoTTL leaves the ttl out)"},
		{name: "negative receipts", opts: []Option{WithReceipts(-time.Second)}, err: "riemann: WithReceipts: negative duration -1s"},
		{name: "nil tls", opts: []Option{WithTLS(nil)}, err: "riemann: WithTLS: nil *tls.Config"},
		{name: "tls and udp", opts: []Option{WithTLS(&tls.Config{}), WithUDP()}, err: "riemann: WithTLS and WithUDP exclude each other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New("h", tc.opts...)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			tc.check(t, s.cfg)
		})
	}
}

// WithTTL(0) sends the default ttl; WithTTL(NoTTL) and ttl=0 in a URL leave
// the field out, as a server sees it.
func TestTTLZeroAndNoTTL(t *testing.T) {
	srv := riemanntest.NewServer(t)
	ctx := context.Background()
	m := []meter.Measurement{{Name: "n", Kind: meter.Gauge, Value: 1, Time: time.Unix(1e9, 0), Host: "h"}}
	for _, tc := range []struct {
		name   string
		open   func() (sink.Sink, error)
		hasTTL bool
		ttl    float32
	}{
		{name: "WithTTL(0)", open: func() (sink.Sink, error) { return New(srv.Addr(), WithTTL(0)) }, hasTTL: true, ttl: 60},
		{name: "WithTTL(NoTTL)", open: func() (sink.Sink, error) { return New(srv.Addr(), WithTTL(NoTTL)) }},
		{name: "ttl=0", open: func() (sink.Sink, error) { return sink.Open(ctx, "riemann://"+srv.Addr()+"?ttl=0") }},
		{name: "ttl=2.5", open: func() (sink.Sink, error) { return sink.Open(ctx, "riemann://"+srv.Addr()+"?ttl=2.5") }, hasTTL: true, ttl: 2.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.open()
			require.NoError(t, err)
			defer s.Close(ctx)
			n := len(srv.Events())
			require.NoError(t, s.Write(ctx, m))
			evs := srv.Events()
			require.Len(t, evs, n+1)
			require.Equal(t, tc.hasTTL, evs[n].HasTTL)
			require.Equal(t, tc.ttl, evs[n].TTL)
		})
	}
}
