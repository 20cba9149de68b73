//go:build integration

package gnocchi

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// One Keystone + Gnocchi for the whole package, started on first use by
// scripts/openstack/keystone-gnocchi.sh with 60 s tokens, stopped by
// TestMain.
var (
	stackOnce sync.Once
	stackDir  string
	stackErr  error
	stackSkip string
	stackUp   time.Duration
)

const tokenLifetime = 60 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	if stackDir != "" {
		out, err := exec.Command(script(), "stop", stackDir).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "keystone-gnocchi.sh stop: %v: %s\n", err, out)
		}
		if code == 0 {
			os.RemoveAll(stackDir)
		} else {
			fmt.Fprintf(os.Stderr, "server logs kept in %s\n", stackDir)
		}
	}
	os.Exit(code)
}

func script() string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "scripts", "openstack", "keystone-gnocchi.sh")
		}
		dir = filepath.Dir(dir)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stack returns the clouds.yaml of the running Keystone + Gnocchi.
func stack(t testing.TB) string {
	t.Helper()
	stackOnce.Do(func() {
		for _, b := range []struct{ path, pkg string }{
			{"/usr/bin/keystone-manage", "keystone"}, {"/usr/bin/gnocchi-upgrade", "gnocchi-api"},
			{"/usr/bin/gnocchi-metricd", "gnocchi-metricd"}, {"/usr/lib/postgresql/15/bin/initdb", "postgresql"},
			{"/usr/bin/uwsgi", "gnocchi-api"},
		} {
			if _, err := os.Stat(b.path); err != nil {
				stackSkip = b.path + " is missing: apt-get install -y " + b.pkg
				return
			}
		}
		stackDir, stackErr = os.MkdirTemp("/var/tmp", "mk-gnocchi-")
		if stackErr != nil {
			return
		}
		var ports []string
		for range 3 {
			p, err := freePort()
			if err != nil {
				stackErr = err
				return
			}
			ports = append(ports, strconv.Itoa(p))
		}
		begin := time.Now()
		args := append([]string{"start", stackDir}, ports...)
		args = append(args, strconv.Itoa(int(tokenLifetime/time.Second)))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, script(), args...).CombinedOutput()
		if err != nil {
			stackErr = fmt.Errorf("keystone-gnocchi.sh start: %v: %s", err, out)
		}
		stackUp = time.Since(begin)
	})
	if stackSkip != "" {
		t.Skip(stackSkip)
	}
	require.NoError(t, stackErr)
	return filepath.Join(stackDir, "clouds.yaml")
}

// readMeasures reads a metric back through Gnocchi's API, as [timestamp,
// granularity, value] triples at 1 s granularity.
func readMeasures(t testing.TB, sc *gophercloud.ServiceClient, rid, name string) [][3]any {
	t.Helper()
	var out [][3]any
	u := sc.ServiceURL("resource", "generic", url.PathEscape(rid), "metric", url.PathEscape(name), "measures") +
		"?refresh=true&granularity=1&aggregation=mean"
	_, err := sc.Get(context.Background(), u, &out, &gophercloud.RequestOpts{MoreHeaders: map[string]string{"Accept": "application/json"}})
	require.NoError(t, err)
	return out
}

func measurements(start time.Time, resources []string, metrics, points int, offset float64) []meter.Measurement {
	var out []meter.Measurement
	for r, rid := range resources {
		for m := range metrics {
			for p := range points {
				out = append(out, meter.Measurement{
					Name: "meterkit.metric" + strconv.Itoa(m), Kind: meter.Gauge, Unit: "B",
					Value:      offset + float64(r*1000+m*100+p) + 0.5,
					Time:       start.Add(time.Duration(p) * time.Second),
					Host:       "host-" + strconv.Itoa(r),
					ResourceID: rid,
					ProjectID:  "9b0d3e7a0c8f4b8e9c4f2f8d1e6a5b4c",
					UserID:     "2f1e0d9c8b7a4f6e5d4c3b2a19080706",
				})
			}
		}
	}
	return out
}

// TestGnocchiKeystone: clouds.yaml auth, Gnocchi from the catalogue, the
// unknown-resource path, then the measures read back through Gnocchi's API.
func TestGnocchiKeystone(t *testing.T) {
	clouds := stack(t)
	t.Logf("Keystone + Gnocchi + PostgreSQL up in %v", stackUp.Round(time.Millisecond))
	s, err := sink.Open(context.Background(), "gnocchi://?cloud=meterkit&clouds_file="+url.QueryEscape(clouds)+"&archive_policy=meterkit-1s")
	require.NoError(t, err)
	defer s.Close(context.Background())
	g := s.(*Sink)

	// One UUID id, one that Gnocchi maps to a UUIDv5.
	rids := []string{"5c3f9a3e-0d0b-4d5e-9a51-3b7e2f6c1d20", "meterkit-host-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	start := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	batch := measurements(start, rids, 2, 5, 0)
	begin := time.Now()
	require.NoError(t, g.Write(context.Background(), batch))
	t.Logf("first Write (400 unknown resources, 2 created, re-post): %v", time.Since(begin).Round(time.Millisecond))
	require.Equal(t, "http://127.0.0.1:"+g.client.Endpoint[len("http://127.0.0.1:"):], g.Endpoint())

	// The same resources again: straight 202.
	more := measurements(start.Add(5*time.Second), rids, 2, 5, 0)
	begin = time.Now()
	require.NoError(t, g.Write(context.Background(), more))
	t.Logf("second Write (known resources): %v", time.Since(begin).Round(time.Millisecond))

	for _, rid := range rids {
		var res struct {
			ProjectID          string            `json:"project_id"`
			UserID             string            `json:"user_id"`
			OriginalResourceID string            `json:"original_resource_id"`
			Metrics            map[string]string `json:"metrics"`
		}
		_, err := g.client.Get(context.Background(), g.client.ServiceURL("resource", "generic", rid), &res, nil)
		require.NoError(t, err)
		require.Equal(t, batch[0].ProjectID, res.ProjectID)
		require.Equal(t, batch[0].UserID, res.UserID)
		require.Equal(t, rid, res.OriginalResourceID)
		require.Len(t, res.Metrics, 2)
	}
	want := map[string]float64{}
	for _, m := range append(batch, more...) {
		want[m.ResourceID+"|"+m.Name+"|"+m.Time.Format(time.RFC3339)] = m.Value
	}
	got := 0
	for _, rid := range rids {
		for _, name := range []string{"meterkit.metric0", "meterkit.metric1"} {
			for _, p := range readMeasures(t, g.client, rid, name) {
				ts, err := time.Parse(time.RFC3339, p[0].(string))
				require.NoError(t, err)
				v, ok := want[rid+"|"+name+"|"+ts.UTC().Format(time.RFC3339)]
				require.True(t, ok, "unexpected point %v", p)
				gotV, err := strconv.ParseFloat(fmt.Sprint(p[2]), 64)
				require.NoError(t, err)
				require.Equal(t, v, gotV)
				got++
			}
		}
	}
	require.Equal(t, len(want), got, "every measure read back")

	// A unit over Gnocchi's 31 characters makes Gnocchi stall on the whole
	// batch until the client times out (seen here: 30 s, then "context
	// deadline exceeded", retried for ever). The sink refuses that
	// measurement itself; the others are stored.
	mixed := measurements(start.Add(10*time.Second), rids, 2, 3, 0)
	bad := meter.Measurement{Name: "meterkit.badunit", Kind: meter.Gauge, Unit: strings.Repeat("u", 40), Value: 1,
		Time: start.Add(10 * time.Second), Host: "host-0", ResourceID: rids[0]}
	mixed = append(mixed[:4], append([]meter.Measurement{bad}, mixed[4:]...)...)
	err = g.Write(context.Background(), mixed)
	t.Logf("batch with a bad unit: %v", err)
	var pe *sink.PartialError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []int{4}, pe.Rejected)
	require.ErrorContains(t, err, `of metric "meterkit.badunit" is over Gnocchi's 31 characters`)
	n := 0
	for _, p := range readMeasures(t, g.client, rids[1], "meterkit.metric1") {
		ts, err := time.Parse(time.RFC3339, p[0].(string))
		require.NoError(t, err)
		if !ts.Before(start.Add(10 * time.Second)) {
			n++
		}
	}
	require.Equal(t, 3, n, "the good measures of the refused batch are stored")
}

// TestGnocchiTokenExpiry writes, waits past the 60 s token lifetime, and
// writes again: gophercloud gets a 401, re-authenticates, and the batch
// lands.
func TestGnocchiTokenExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a token to expire (~65 s)")
	}
	clouds := stack(t)
	g, err := New(WithCloud("meterkit"), WithCloudsFile(clouds), WithArchivePolicy("meterkit-1s"))
	require.NoError(t, err)
	defer g.Close(context.Background())
	rid := "meterkit-expiry-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	start := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	require.NoError(t, g.Write(context.Background(), measurements(start, []string{rid}, 1, 3, 0)))
	p, err := g.session.Provider(context.Background())
	require.NoError(t, err)
	first := p.Token()
	t.Logf("token issued; sleeping past its %v lifetime", tokenLifetime)
	time.Sleep(tokenLifetime + 5*time.Second)
	require.NoError(t, g.Write(context.Background(), measurements(start.Add(3*time.Second), []string{rid}, 1, 3, 0)))
	require.NotEqual(t, first, p.Token(), "a new token after the 401")
	require.Len(t, readMeasures(t, g.client, rid, "meterkit.metric0"), 6, "no batch lost across the expiry")
}

// BenchmarkGnocchi posts batches of 1,000 measures and reports measures per
// second accepted (202). Gnocchi's cost is mostly per metric in a request,
// so it runs two shapes: 100 series of 10 points (10 resources x 10
// metrics), and 10 series of 100 points (10 resources x 1 metric).
func BenchmarkGnocchi(b *testing.B) {
	clouds := stack(b)
	for _, shape := range []struct {
		name            string
		metrics, points int
	}{{"series=100,points=10", 10, 10}, {"series=10,points=100", 1, 100}} {
		b.Run(shape.name, func(b *testing.B) {
			// Gnocchi's default archive policy, as a deployment would use:
			// the 1 s policy of the tests keeps metricd busy enough to slow
			// the API down several times on a small machine.
			g, err := New(WithCloud("meterkit"), WithCloudsFile(clouds))
			require.NoError(b, err)
			defer g.Close(context.Background())
			var rids []string
			for i := range 10 {
				rids = append(rids, "meterkit-bench-"+strconv.Itoa(shape.metrics)+"-"+strconv.Itoa(i))
			}
			start := time.Now().UTC().Truncate(time.Second).Add(-20 * time.Hour)
			// Create the resources and metrics before timing.
			require.NoError(b, g.Write(context.Background(), measurements(start, rids, shape.metrics, 1, 0)))
			batch := measurements(start, rids, shape.metrics, shape.points, 0)
			n, round := 0, 0
			write := func() error {
				round++
				for j := range batch {
					batch[j].Time = start.Add(time.Duration(round*shape.points+j%shape.points) * time.Second)
				}
				return g.Write(context.Background(), batch)
			}
			// Warm up: uwsgi workers and keystonemiddleware are slow on
			// their first requests.
			for range 3 {
				require.NoError(b, write())
			}
			for b.Loop() {
				if err := write(); err != nil {
					b.Fatal(err)
				}
				n += len(batch)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "measures/s")
		})
	}
}
