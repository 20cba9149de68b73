package prometheus

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/driver/drivertest"
	"github.com/meterkit/meter/internal/tlsfiles"
	"github.com/meterkit/meter/internal/tlsfiles/tlsfilestest"
)

// registry makes a client_golang registry with one metric of each type and
// known values.
func registry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounter(prometheus.CounterOpts{Name: "app_requests_total", Help: "Requests."})
	temp := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "app_temperature_celsius", Help: "Temperature."}, []string{"room", "floor"})
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "app_latency_seconds", Help: "Latency.", Buckets: []float64{0.1, 0.5, 1}})
	size := prometheus.NewSummary(prometheus.SummaryOpts{
		Name: "app_response_bytes", Help: "Sizes.",
		Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01},
	})
	reg.MustRegister(requests, temp, latency, size)
	requests.Add(42)
	temp.WithLabelValues("a", "1").Set(21.5)
	temp.WithLabelValues("b", "").Set(-3) // an empty label value is no label
	for _, v := range []float64{0.05, 0.3, 0.3, 2} {
		latency.Observe(v)
	}
	for _, v := range []float64{100, 200, 300, 400, 500} {
		size.Observe(v)
	}
	return reg
}

func config(t *testing.T, v any) driver.Config {
	t.Helper()
	c, err := driver.ConfigFrom(v)
	require.NoError(t, err)
	return c
}

func open(t *testing.T, v any) *Driver {
	t.Helper()
	d, err := New(config(t, v))
	require.NoError(t, err)
	dr := d.(*Driver)
	t.Cleanup(func() { _ = dr.Close() })
	return dr
}

func collect(t *testing.T, d *Driver, timeout time.Duration) ([]meter.Measurement, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.Collect(ctx)
}

// key names a measurement by name and labels, for lookups in tests.
func key(m meter.Measurement) string {
	var ls []string
	for _, l := range m.Labels {
		ls = append(ls, l.Key+"="+l.Value)
	}
	sort.Strings(ls)
	return m.Name + "{" + strings.Join(ls, ",") + "}"
}

func index(t *testing.T, ms []meter.Measurement) map[string]meter.Measurement {
	t.Helper()
	out := map[string]meter.Measurement{}
	for _, m := range ms {
		require.NoError(t, m.Validate())
		k := key(m)
		require.NotContains(t, out, k, "series twice")
		out[k] = m
	}
	return out
}

func TestRegistered(t *testing.T) {
	_, err := driver.Lookup("prometheus")
	require.NoError(t, err)
}

func TestScrapeClientGolang(t *testing.T) {
	handler := promhttp.HandlerFor(registry(t), promhttp.HandlerOpts{})
	for _, tc := range []struct {
		name        string
		textOnly    bool
		contentType string
	}{
		{"protobuf", false, "application/vnd.google.protobuf"},
		{"text", true, "text/plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotType string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.textOnly {
					r.Header.Del("Accept")
				}
				handler.ServeHTTP(w, r)
				gotType = w.Header().Get("Content-Type")
			}))
			defer srv.Close()
			d := open(t, map[string]any{"url": srv.URL + "/metrics", "prefix": "svc", "resource_id": "web1"})
			before := time.Now()
			ms, err := collect(t, d, 5*time.Second)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(gotType, tc.contentType), gotType)
			got := index(t, ms)

			want := []struct {
				key  string
				kind meter.Kind
				unit string
				v    float64
			}{
				{"svc.app_requests_total{}", meter.Cumulative, "", 42},
				{"svc.app_temperature_celsius{floor=1,room=a}", meter.Gauge, "°C", 21.5},
				{"svc.app_temperature_celsius{room=b}", meter.Gauge, "°C", -3},
				{"svc.app_latency_seconds_bucket{le=0.1}", meter.Cumulative, "", 1},
				{"svc.app_latency_seconds_bucket{le=0.5}", meter.Cumulative, "", 3},
				{"svc.app_latency_seconds_bucket{le=1}", meter.Cumulative, "", 3},
				{"svc.app_latency_seconds_bucket{le=+Inf}", meter.Cumulative, "", 4},
				{"svc.app_latency_seconds_sum{}", meter.Cumulative, "s", 0.05 + 0.3 + 0.3 + 2},
				{"svc.app_latency_seconds_count{}", meter.Cumulative, "", 4},
				{"svc.app_response_bytes{quantile=0.5}", meter.Gauge, "B", 300},
				{"svc.app_response_bytes{quantile=0.9}", meter.Gauge, "B", 500},
				{"svc.app_response_bytes_sum{}", meter.Cumulative, "B", 1500},
				{"svc.app_response_bytes_count{}", meter.Cumulative, "", 5},
			}
			for _, w := range want {
				m, ok := got[w.key]
				require.True(t, ok, "missing %s in %v", w.key, keys(got))
				require.Equal(t, w.kind, m.Kind, w.key)
				require.Equal(t, w.unit, m.Unit, w.key)
				require.InDelta(t, w.v, m.Value, 1e-9, w.key)
				require.Equal(t, "web1", m.ResourceID)
				require.False(t, m.Time.Before(before.Add(-time.Second)))
			}
			require.Len(t, got, len(want), "%v", keys(got))
		})
	}
}

func keys(m map[string]meter.Measurement) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// textServer serves body as the text format.
func textServer(t *testing.T, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTimestampsAllowDenyResourceLabel(t *testing.T) {
	srv := textServer(t, `# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 100.5 1700000000123
node_cpu_seconds_total{cpu="1",mode="idle"} 200
# TYPE node_load1 gauge
node_load1 0.75
# TYPE go_goroutines gauge
go_goroutines 12
# TYPE node_thing untyped
node_thing{x="y"} 3
# TYPE node_empty summary
node_empty_sum 0
node_empty_count 0
`)
	d := open(t, map[string]any{
		"url": srv.URL, "allow": []string{"node_*"}, "deny": []string{"node_load?"},
		"resource_label": "cpu", "resource_id": "host",
	})
	ms, err := collect(t, d, 5*time.Second)
	require.NoError(t, err)
	require.Len(t, ms, 5)
	require.ElementsMatch(t, []string{
		"node_cpu_seconds_total{mode=idle}", "node_thing{x=y}", "node_empty_sum{}", "node_empty_count{}",
	}, uniqueNames(ms))
	var cpu0, cpu1 meter.Measurement
	for _, m := range ms {
		switch m.ResourceID {
		case "0":
			cpu0 = m
		case "1":
			cpu1 = m
		}
	}
	require.Equal(t, time.UnixMilli(1700000000123), cpu0.Time)
	require.Equal(t, 100.5, cpu0.Value)
	require.Equal(t, "s", cpu0.Unit)
	require.Equal(t, meter.Cumulative, cpu0.Kind)
	require.Equal(t, 200.0, cpu1.Value)
	require.WithinDuration(t, time.Now(), cpu1.Time, 5*time.Second)
	var thing meter.Measurement
	for _, m := range ms {
		if m.Name == "node_thing" {
			thing = m
		}
	}
	require.Equal(t, meter.Gauge, thing.Kind)
	require.Equal(t, "host", thing.ResourceID)
}

func uniqueNames(ms []meter.Measurement) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		k := key(m)
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func TestTooManyLabelsSkipped(t *testing.T) {
	var many []string
	for i := range meter.MaxLabels + 1 {
		many = append(many, fmt.Sprintf(`l%d="v"`, i))
	}
	long := strings.Repeat("x", meter.MaxLabelValueLen+1)
	srv := textServer(t, "# TYPE wide gauge\nwide{"+strings.Join(many, ",")+"} 1\nwide 2\n"+
		"# TYPE longval gauge\nlongval{a=\""+long+"\"} 1\n"+
		"# TYPE ok gauge\nok 3\n")
	d := open(t, map[string]any{"url": srv.URL})
	ms, err := collect(t, d, 5*time.Second)
	require.ErrorContains(t, err, "skipped 1 samples with more than 64 labels (the first of metric wide)")
	require.ErrorContains(t, err, "skipped 1 invalid samples (the first: metric longval: meter: invalid measurement: Labels[0].Value: 1025 bytes")
	require.ElementsMatch(t, []string{"wide{}", "ok{}"}, uniqueNames(ms))
}

func TestHeadersNeverInErrors(t *testing.T) {
	const token = "Bearer s3cr3t-t0ken"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != token {
			http.Error(w, "no entry", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "up 1\n")
	}))
	defer srv.Close()

	d := open(t, map[string]any{"url": srv.URL, "headers": map[string]string{"Authorization": token}})
	ms, err := collect(t, d, 5*time.Second)
	require.NoError(t, err)
	require.Len(t, ms, 1)

	d = open(t, map[string]any{"url": srv.URL, "headers": map[string]string{"Authorization": "Bearer wrong-secret"}})
	_, err = collect(t, d, 5*time.Second)
	require.ErrorContains(t, err, "prometheus: scrape "+srv.URL+": 401 Unauthorized: \"no entry\"")
	require.NotContains(t, err.Error(), "wrong-secret")

	// A password in the URL is redacted.
	u := strings.Replace(srv.URL, "http://", "http://user:pa55word@", 1)
	d = open(t, map[string]any{"url": u})
	_, err = collect(t, d, 5*time.Second)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "pa55word")
}

func TestServerErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "database on fire", http.StatusInternalServerError)
		}, `: 500 Internal Server Error: "database on fire"`},
		{"garbage text", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			fmt.Fprint(w, "this is { not metrics\n")
		}, "parsing the response (text format): text format parsing error in line 1"},
		{"html", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body>login</body></html>\n")
		}, "parsing the response (text format)"},
		{"garbage protobuf", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")
			_, _ = w.Write([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff})
		}, "parsing the response (protobuf format)"},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			for i := range 1000 {
				fmt.Fprintf(w, "m%d 1\n", i)
			}
		}, "the response is over the limit of 1000 bytes (max_body)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			d := open(t, map[string]any{"url": srv.URL + "/metrics", "max_body": 1000})
			_, err := collect(t, d, 5*time.Second)
			require.ErrorContains(t, err, "prometheus: scrape "+srv.URL+"/metrics")
			require.ErrorContains(t, err, tc.want)
		})
	}

	// Nobody listening.
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	d := open(t, map[string]any{"url": u})
	_, err := collect(t, d, 5*time.Second)
	require.ErrorContains(t, err, "prometheus: scrape "+u+": ")
	require.ErrorContains(t, err, "connection refused")
}

func TestSlowServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	t.Run("ctx deadline", func(t *testing.T) {
		d := open(t, map[string]any{"url": srv.URL})
		start := time.Now()
		_, err := collect(t, d, 200*time.Millisecond)
		require.Less(t, time.Since(start), time.Second)
		require.ErrorContains(t, err, "context deadline exceeded")
	})
	t.Run("configured timeout", func(t *testing.T) {
		d := open(t, map[string]any{"url": srv.URL, "timeout": "150ms"})
		start := time.Now()
		_, err := collect(t, d, 10*time.Second)
		require.Less(t, time.Since(start), time.Second)
		require.ErrorContains(t, err, "context deadline exceeded")
	})
	t.Run("cancelled", func(t *testing.T) {
		d := open(t, map[string]any{"url": srv.URL})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := d.Collect(ctx)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, "prometheus: config: url is empty"},
		{map[string]any{"url": "ftp://x/metrics"}, `prometheus: config: url "ftp://x/metrics": scheme must be http or https`},
		{map[string]any{"url": "http:///metrics"}, "has no host"},
		{map[string]any{"url": "http://x", "timeout": "soon"}, `time: invalid duration "soon"`},
		{map[string]any{"url": "http://x", "timeout": 5}, `duration: want a string like "10s", got 5`},
		{map[string]any{"url": "http://x", "timeout": "-1s"}, "prometheus: config: timeout -1s must be positive"},
		{map[string]any{"url": "http://x", "max_body": -1}, "prometheus: config: max_body -1 must be positive"},
		{map[string]any{"url": "http://x", "headers": map[string]string{"Bad Name": "v"}}, `headers: malformed header name "Bad Name"`},
		{map[string]any{"url": "http://x", "headers": map[string]string{"X-Token": "a\nb"}}, `headers: the value of "X-Token" contains a line break`},
		{map[string]any{"url": "http://x", "allow": []string{"[a-"}}, `prometheus: config: allow: pattern "[a-": syntax error in pattern`},
		{map[string]any{"url": "http://x", "deny": []string{"["}}, `prometheus: config: deny: pattern "["`},
		{map[string]any{"url": "http://x", "interval": "1s"}, `json: unknown field "interval"`},
		{map[string]any{"url": "http://x", "tls": map[string]any{}}, `prometheus: config: tls is set, but url "http://x" is not https`},
		{map[string]any{"url": "https://x", "tls": map[string]any{"ca_file": "/nonexistent"}}, "prometheus: config: tls: ca: open /nonexistent"},
		{map[string]any{"url": "https://x", "tls": map[string]any{"cert_file": "/c"}}, "prometheus: config: tls: cert and key go together"},
		{map[string]any{"url": "https://x", "tls": map[string]any{"ca": "/c"}}, `json: unknown field "ca"`},
	} {
		_, err := New(config(t, tc.cfg))
		require.ErrorContains(t, err, tc.want, "%v", tc.cfg)
	}
}

func TestConformance(t *testing.T) {
	srv := httptest.NewServer(promhttp.HandlerFor(registry(t), promhttp.HandlerOpts{}))
	defer srv.Close()
	drivertest.Run(t, New, config(t, map[string]any{"url": srv.URL}))
}

// An exporter behind mutual TLS (as node_exporter's web configuration
// sets up) is scraped with the CA and a client certificate; without the
// certificate, or trusting another CA, the scrape fails and says why.
func TestScrapeOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	srvCert, srvKey := tlsfilestest.WritePair(t, dir, "exporter")
	cliCert, cliKey := tlsfilestest.WritePair(t, dir, "agent")
	other, _ := tlsfilestest.WritePair(t, dir, "other")
	srvTLS, err := tlsfiles.Server(srvCert, srvKey, cliCert)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(promhttp.HandlerFor(registry(t), promhttp.HandlerOpts{}))
	srv.TLS = srvTLS
	srv.StartTLS()
	defer srv.Close()

	d := open(t, map[string]any{"url": srv.URL, "tls": map[string]any{"ca_file": srvCert, "cert_file": cliCert, "key_file": cliKey}})
	ms, err := collect(t, d, 5*time.Second)
	require.NoError(t, err)
	require.NotEmpty(t, ms)

	d = open(t, map[string]any{"url": srv.URL, "tls": map[string]any{"ca_file": srvCert}})
	_, err = collect(t, d, 5*time.Second)
	require.ErrorContains(t, err, "certificate required", "no client certificate: the exporter refuses")

	d = open(t, map[string]any{"url": srv.URL, "tls": map[string]any{"ca_file": other, "cert_file": cliCert, "key_file": cliKey}})
	_, err = collect(t, d, 5*time.Second)
	require.ErrorContains(t, err, "certificate signed by unknown authority")

	d = open(t, map[string]any{"url": srv.URL, "tls": map[string]any{"ca_file": srvCert, "cert_file": cliCert, "key_file": cliKey,
		"server_name": "someone-else"}})
	_, err = collect(t, d, 5*time.Second)
	require.ErrorContains(t, err, "someone-else")
}
