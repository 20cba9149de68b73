//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	gnocchiclient "github.com/gophercloud/utils/v2/gnocchi"
	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/sink/riemann/riemanntest"
)

// The rate end to end, issue 14: the reference agent runs driver/synthetic
// in its cumulative mode (value = slope x wall-clock seconds, so the rate
// is the slope, exactly but for float rounding) through a rate stage from
// a -stages file; the reference publisher writes to a real store; the
// rates are read back from the store.

// slope is the synthetic counters' increase per second, in B.
const slope = 2.5

// tolerance is the relative error allowed on a rate: the counters are near
// 4.6e9 in a float64 (a unit in the last place is 9.5e-7), so a rate over
// 0.25 s is off by up to about 8e-6 / 2.5 of the slope.
const tolerance = 1e-5

// rateAgent writes the agent's config and stages file into dir and returns
// the flags that start it against the publisher at addr: two synthetic
// counters (slot-0, slot-1) every interval, and their rates named
// synthetic.counter.rate beside them.
func rateAgent(t *testing.T, dir, addr string, interval time.Duration) []string {
	t.Helper()
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `interval: %s
batch:
  age: 100ms
drivers:
  - type: synthetic
    settings: {name: synthetic.counter, slope: %v, unit: B, per_collection: 2, run: e2e-rate}
`, interval, slope), 0o600))
	stages := filepath.Join(dir, "stages.yaml")
	require.NoError(t, os.WriteFile(stages, []byte(`
- type: rate
  meters: ["synthetic.counter"]
  as: $(name).rate
`), 0o600))
	return []string{"-config", cfg, "-stages", stages, "-connect", addr, "-id", "e2e-rate", "-stats-every", "0s"}
}

// riemannQuery runs Debian's riemann-client query -j against the server at
// port and decodes the events it prints.
func riemannQuery(t *testing.T, q, port string) []map[string]any {
	t.Helper()
	path, err := exec.LookPath("riemann-client")
	if err != nil {
		t.Skip("riemann-client not installed (apt-get install -y riemann-c-client)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "query", q, "-j", "127.0.0.1", port).CombinedOutput()
	require.NoError(t, err, "riemann-client query %q: %s", q, out)
	var evs []map[string]any
	require.NoError(t, json.Unmarshal(out, &evs), "output: %s", out)
	return evs
}

func TestE2ERateToRiemann(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	dir := t.TempDir()
	pubBin, agentBin := build(t, dir, "publisher"), build(t, dir, "agent")
	srv := riemanntest.NewServer(t)
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	_, _, pubErr := start(t, pubBin, "-listen", addr, "-sink", "riemann://"+srv.Addr(), "-stats-every", "0s")
	_, _, agentErr := start(t, agentBin, rateAgent(t, dir, addr, 250*time.Millisecond)...)

	rates := func() []riemanntest.Event {
		var out []riemanntest.Event
		for _, e := range srv.Events() {
			if e.Service == "synthetic.counter.rate" {
				out = append(out, e)
			}
		}
		return out
	}
	const want = 10 // five collections after the first, two series each
	require.Eventually(t, func() bool { return len(rates()) >= want }, 30*time.Second, 50*time.Millisecond,
		"publisher:\n%s\nagent:\n%s", pubErr, agentErr)

	// Every collection but the first of each slot has its rate, at the
	// counter's time (a rate travels in the batch of its input).
	counters, rated := map[string][]time.Time{}, map[string][]time.Time{}
	for _, e := range srv.Events() {
		slot := e.Attributes["resource_id"]
		switch e.Service {
		case "synthetic.counter":
			counters[slot] = append(counters[slot], e.Time)
		case "synthetic.counter.rate":
			require.InEpsilon(t, slope, e.Metric, tolerance, "rate of %s at %v", slot, e.Time)
			require.Equal(t, "B/s", e.Attributes["unit"])
			require.Equal(t, "gauge", e.Attributes["kind"])
			require.Equal(t, "e2e-rate", e.Attributes["run"])
			rated[slot] = append(rated[slot], e.Time)
		}
	}
	require.Len(t, rated, 2, "one series per slot")
	for slot, times := range counters {
		require.Equal(t, times[1:], rated[slot], "%s: a rate for each collection after the first", slot)
	}

	// riemann-client reads them back: the index keeps the latest event of
	// the host and service (the two slots share them).
	evs := riemannQuery(t, `service = "synthetic.counter.rate"`, srv.Port())
	require.Len(t, evs, 1)
	t.Logf("riemann-client query -j: %v", evs[0])
	require.InEpsilon(t, slope, evs[0]["metric_d"], tolerance)
	attrs, _ := evs[0]["attributes"].(map[string]any)
	require.Equal(t, "B/s", attrs["unit"])
	require.Contains(t, []string{"slot-0", "slot-1"}, attrs["resource_id"])
}

// gnocchiStack starts Keystone + Gnocchi with scripts/openstack and returns
// its clouds.yaml; it is stopped when the test ends.
func gnocchiStack(t *testing.T) string {
	t.Helper()
	for _, b := range []struct{ path, pkg string }{
		{"/usr/bin/keystone-manage", "keystone"}, {"/usr/bin/gnocchi-upgrade", "gnocchi-api"},
		{"/usr/bin/gnocchi-metricd", "gnocchi-metricd"}, {"/usr/lib/postgresql/15/bin/initdb", "postgresql"},
		{"/usr/bin/uwsgi", "gnocchi-api"},
	} {
		if _, err := os.Stat(b.path); err != nil {
			t.Skip(b.path + " is missing: apt-get install -y " + b.pkg)
		}
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "openstack", "keystone-gnocchi.sh"))
	require.NoError(t, err)
	dir, err := os.MkdirTemp("/var/tmp", "mk-e2e-gnocchi-")
	require.NoError(t, err)
	args := []string{"start", dir}
	for range 3 {
		args = append(args, strconv.Itoa(freePort(t)))
	}
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, args...).CombinedOutput()
	t.Cleanup(func() {
		if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
			t.Logf("keystone-gnocchi.sh stop: %v: %s", err, out)
		}
		if t.Failed() {
			t.Logf("server logs kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	})
	require.NoError(t, err, "keystone-gnocchi.sh start: %s", out)
	t.Logf("Keystone + Gnocchi + PostgreSQL up in %v", time.Since(begin).Round(time.Millisecond))
	return filepath.Join(dir, "clouds.yaml")
}

// gnocchiClient authenticates as the clouds.yaml's cloud "meterkit" and
// finds Gnocchi in the catalogue.
func gnocchiClient(t *testing.T, cloudsFile string) *gophercloud.ServiceClient {
	t.Helper()
	ao, eo, _, err := clouds.Parse(clouds.WithCloudName("meterkit"), clouds.WithLocations(cloudsFile))
	require.NoError(t, err)
	p, err := openstack.NewClient(ao.IdentityEndpoint)
	require.NoError(t, err)
	p.HTTPClient = http.Client{Timeout: 30 * time.Second}
	require.NoError(t, openstack.Authenticate(context.Background(), p, ao))
	sc, err := gnocchiclient.NewGnocchiV1(p, eo)
	require.NoError(t, err)
	return sc
}

// gnocchiMeasures reads a metric of a resource back through Gnocchi's API:
// timestamp -> value at 1 s granularity (the mean of the second).
func gnocchiMeasures(t *testing.T, sc *gophercloud.ServiceClient, rid, name string) (map[string]float64, error) {
	var triples [][3]any
	u := sc.ServiceURL("resource", "generic", url.PathEscape(rid), "metric", url.PathEscape(name), "measures") +
		"?refresh=true&granularity=1&aggregation=mean"
	_, err := sc.Get(context.Background(), u, &triples, &gophercloud.RequestOpts{MoreHeaders: map[string]string{"Accept": "application/json"}})
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, p := range triples {
		ts, _ := p[0].(string)
		v, err := strconv.ParseFloat(fmt.Sprint(p[2]), 64) // a json.Number from gophercloud
		if err != nil {
			return nil, fmt.Errorf("measure %v: %w", p, err)
		}
		out[ts] = v
	}
	return out, nil
}

func TestE2ERateToGnocchi(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	cloudsFile := gnocchiStack(t)
	dir := t.TempDir()
	pubBin, agentBin := build(t, dir, "publisher"), build(t, dir, "agent")
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	sinkURL := "gnocchi://?cloud=meterkit&clouds_file=" + url.QueryEscape(cloudsFile) + "&archive_policy=meterkit-1s"
	_, _, pubErr := start(t, pubBin, "-listen", addr, "-sink", sinkURL, "-stats-every", "0s")
	_, _, agentErr := start(t, agentBin, rateAgent(t, dir, addr, time.Second)...)

	sc := gnocchiClient(t, cloudsFile)
	const want = 5 // seconds with a rate, per slot
	got := map[string]map[string]float64{}
	require.Eventually(t, func() bool {
		for _, rid := range []string{"slot-0", "slot-1"} {
			m, err := gnocchiMeasures(t, sc, rid, "synthetic.counter.rate")
			if err != nil {
				return false // the resource or metric is not there yet
			}
			got[rid] = m
		}
		return len(got["slot-0"]) >= want && len(got["slot-1"]) >= want
	}, 90*time.Second, 500*time.Millisecond, "measures: %v\npublisher:\n%s\nagent:\n%s", got, pubErr, agentErr)

	for rid, m := range got {
		for ts, v := range m {
			require.InEpsilon(t, slope, v, tolerance, "%s at %s: %v", rid, ts, m)
		}
		t.Logf("Gnocchi %s synthetic.counter.rate: %d measures, e.g. %v", rid, len(m), first(m))
	}

	// The counter itself arrived too, rising by the slope per second.
	counter, err := gnocchiMeasures(t, sc, "slot-0", "synthetic.counter")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(counter), want)
	for ts, v := range counter {
		at, err := time.Parse(time.RFC3339, ts)
		require.NoError(t, err)
		// The value is slope x the collection's time, which is within the
		// second the measure's timestamp starts.
		sec := float64(at.Unix())
		require.True(t, v >= slope*sec && v < slope*(sec+1), "counter %v at %s, want in [%v, %v)", v, ts, slope*sec, slope*(sec+1))
	}
}

// first returns one entry of m, in order of keys, for a log line.
func first(m map[string]float64) string {
	k := ""
	for ts := range m {
		if k == "" || strings.Compare(ts, k) < 0 {
			k = ts
		}
	}
	if k == "" {
		return "none"
	}
	return k + "=" + strconv.FormatFloat(m[k], 'g', -1, 64) + fmt.Sprintf(" (|error| %.2g)", math.Abs(m[k]-slope))
}
