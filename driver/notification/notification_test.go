package notification

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/driver"
)

func TestRegisteredAndDefaults(t *testing.T) {
	d, err := driver.Open("notification", driver.ConfigFromJSON([]byte(`{}`)))
	require.NoError(t, err)
	n := d.(*Driver)
	require.Equal(t, DefaultURL, n.url)
	require.Equal(t, DefaultQueue, n.cfg.Queue)
	require.Equal(t, DefaultExchanges, n.cfg.Exchanges)
	require.Equal(t, DefaultRoutingKey, n.cfg.RoutingKey)
	require.Nil(t, n.tls)
	_, ok := d.(driver.Pusher)
	require.True(t, ok)
	ms, err := d.Collect(t.Context())
	require.NoError(t, err)
	require.Empty(t, ms, "a push source collects nothing")
}

func TestCredentialsFileAndTLS(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	require.NoError(t, os.WriteFile(creds, []byte("meter:s3cr:et\n"), 0o600))
	d, err := NewDriver(Config{URL: "amqps://guest:guest@rabbit.example:5671/vh", CredentialsFile: creds, ServerName: "bus"}, nil)
	require.NoError(t, err)
	require.Equal(t, "amqps://meter:s3cr%3Aet@rabbit.example:5671/vh", d.url)
	require.NotNil(t, d.tls)
	require.Equal(t, "bus", d.tls.ServerName)

	for name, c := range map[string]Config{
		"scheme":           {URL: "http://x/"},
		"tls without amqp": {URL: "amqp://x/", CA: "/ca.pem"},
		"missing ca":       {URL: "amqps://x/", CA: filepath.Join(dir, "nope.pem")},
		"missing creds":    {CredentialsFile: filepath.Join(dir, "nope")},
		"definitions":      {Definitions: filepath.Join(dir, "nope.yaml")},
		"negative":         {MaxLength: -1},
	} {
		_, err := NewDriver(c, nil)
		require.Error(t, err, name)
	}
	require.NoError(t, os.WriteFile(creds, []byte("no colon\n"), 0o600))
	_, err = NewDriver(Config{CredentialsFile: creds}, nil)
	require.ErrorContains(t, err, "user:password")
}

func TestStatsLogValue(t *testing.T) {
	v := Stats{Consumed: 3, Rejected: 1}.LogValue()
	attrs := v.Group()
	require.Equal(t, "consumed", attrs[0].Key)
	require.Equal(t, uint64(3), attrs[0].Value.Uint64())
}

func TestRecentWindow(t *testing.T) {
	r := recent{ring: make([]string, 2), ids: map[string]struct{}{}}
	r.add("a")
	r.add("b")
	r.add("a") // already there: does not push b out
	require.True(t, r.has("a"))
	require.True(t, r.has("b"))
	r.add("c") // a, the oldest, goes
	require.False(t, r.has("a"))
	require.True(t, r.has("b"))
	require.True(t, r.has("c"))
	require.Len(t, r.ids, 2)
}
