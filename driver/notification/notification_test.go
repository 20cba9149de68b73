package notification

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
		"stats_every":      {StatsEvery: -1},
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

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPushLogsItsStats: while Push runs (here against no broker at all),
// the counters are logged every StatsEvery, and once more when it returns.
func TestPushLogsItsStats(t *testing.T) {
	var out syncBuffer
	d, err := NewDriver(Config{URL: "amqp://guest:guest@127.0.0.1:1/", RetryInterval: driver.Duration(10 * time.Millisecond),
		StatsEvery: driver.Duration(40 * time.Millisecond)}, slog.New(slog.NewTextHandler(&out, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Push(ctx, func(driver.Delivery) { t.Error("nothing to deliver") }) }()
	require.Eventually(t, func() bool { return strings.Count(out.String(), `msg="notification stats"`) >= 2 },
		5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	require.Contains(t, last, `msg="notification stats"`, "logged when Push returns")
	require.Contains(t, last, "consumed=0 acked=0 rejected=0 unmatched=0")
	require.Regexp(t, `reconnects=[1-9]`, last)
	require.NotZero(t, d.Stats().Reconnects)
}
