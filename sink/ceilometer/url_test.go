package ceilometer

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/sink"
)

func TestNotifierURLs(t *testing.T) {
	t.Setenv("MK_SECRET", "hmac-Secret-1")
	for _, c := range []struct {
		url, amqp, err string
	}{
		{url: "ceilometer+amqp://guest:guest@127.0.0.1:5672/?exchange=ceilometer&durable=false&secret_env=MK_SECRET&batch=100",
			amqp: "amqp://guest:guest@127.0.0.1:5672/"},
		{url: "ceilometer+amqp://u:p@rabbit/telemetry?routing_key=notifications.sample&publisher_id=x&source=s&timeout=5s&dial_timeout=1s",
			amqp: "amqp://u:p@rabbit/telemetry"},
		{url: "ceilometer+amqps://u:p@rabbit:5671/?server_name=rabbit", amqp: "amqps://u:p@rabbit:5671/"},
		{url: "ceilometer+amqp://rabbit/?ca=/x", err: `unknown parameter "ca"`},
		{url: "ceilometer+amqp:///?batch=1", err: "has no host"},
		{url: "ceilometer+amqp://h/?batch=0", err: "batch"},
		{url: "ceilometer+amqp://h/?durable=maybe", err: "durable"},
		{url: "ceilometer+amqp://h/?secret_env=MK_UNSET_VARIABLE", err: `"MK_UNSET_VARIABLE" is empty or unset`},
		{url: "ceilometer+amqp://h/?timeout=0s", err: "not a positive duration"},
		{url: "ceilometer+amqp://h/?exchange=a&exchange=b", err: "given 2 times"},
		{url: "ceilometer+amqps://h/?cert=/c", err: "go together"},
	} {
		u, err := url.Parse(c.url)
		require.NoError(t, err)
		got, opts, err := notifierURL(u)
		if c.err != "" {
			require.ErrorContains(t, err, c.err, c.url)
			continue
		}
		require.NoError(t, err, c.url)
		require.Equal(t, c.amqp, got)
		_, err = NewNotifier(got, opts...)
		require.NoError(t, err)
	}
}

func TestV2URLs(t *testing.T) {
	for _, c := range []struct {
		url, err string
		opts     int
	}{
		{url: "ceilometer://?cloud=mycloud&region=RegionOne&interface=internal", opts: 3},
		{url: "ceilometer+http://ceilometer:8777?cloud=mycloud", opts: 2},
		{url: "ceilometer+https://ceilometer:8777/", opts: 1},
		{url: "ceilometer://?exchange=x", err: `unknown parameter "exchange"`},
		{url: "ceilometer://u:p@h/", err: "takes no user"},
		{url: "ceilometer:///v2", err: "path but no host"},
	} {
		u, err := url.Parse(c.url)
		require.NoError(t, err)
		opts, err := v2URL(u)
		if c.err != "" {
			require.ErrorContains(t, err, c.err, c.url)
			continue
		}
		require.NoError(t, err, c.url)
		require.Len(t, opts, c.opts, c.url)
	}
	require.Contains(t, sink.Schemes(), "ceilometer+amqp")
	require.Contains(t, sink.Schemes(), "ceilometer+amqps")
	require.Contains(t, sink.Schemes(), "ceilometer")
	require.Contains(t, sink.Schemes(), "ceilometer+http")
}

// TestNotifierBrokerDown: nothing listens, so Write fails, retryably, naming
// the broker and never the password; a bad measurement is reported as such.
func TestNotifierBrokerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	n, err := NewNotifier("amqp://guest:Pa55-w0rd@127.0.0.1:"+strconv.Itoa(port)+"/", WithDialTimeout(time.Second), WithSecret([]byte("k")))
	require.NoError(t, err)
	defer n.Close(context.Background())
	b := v2Batch()
	err = n.Write(context.Background(), b)
	require.Error(t, err)
	require.False(t, sink.IsPermanent(err))
	require.ErrorContains(t, err, "127.0.0.1:"+strconv.Itoa(port))
	require.NotContains(t, err.Error(), "Pa55-w0rd")

	// Everything invalid: permanent, with no dial needed.
	b[0].Host, b[0].ResourceID = "", ""
	err = n.Write(context.Background(), b[:1])
	require.True(t, sink.IsPermanent(err), "%v", err)
	require.ErrorContains(t, err, "no ResourceID and no Host")

	require.NoError(t, n.Close(context.Background()))
	require.NoError(t, n.Close(context.Background()))
	require.ErrorIs(t, n.Write(context.Background(), b), sink.ErrClosed)
}

func TestNackError(t *testing.T) {
	e := &NackError{Broker: "h:5672", Exchange: "ceilometer", Key: "notifications.sample", Returned: 2, Reason: "312 NO_ROUTE"}
	require.Equal(t, `ceilometer: publish to exchange "ceilometer" key "notifications.sample" at h:5672: 2 notification(s) unroutable (no queue bound: is the notification agent running?): 312 NO_ROUTE`, e.Error())
	e = &NackError{Broker: "h:5672", Exchange: "x", Key: "k", Nacked: 1}
	require.Contains(t, e.Error(), "1 notification(s) nacked by the broker")
}
