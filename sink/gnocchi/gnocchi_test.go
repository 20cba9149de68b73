package gnocchi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/internal/keystone/keystonetest"
)

// fakeGnocchi behaves like Gnocchi's batch endpoint and resource creation
// as far as the sink depends on them.
type fakeGnocchi struct {
	*httptest.Server
	auth func(*http.Request) bool

	mu        sync.Mutex
	resources map[string]map[string]any // id -> body it was created with
	measures  map[string]map[string][]measure
	metrics   map[string]metricBody // "rid/name" -> unit, policy
	posts     int
	fail      int    // status for the next batch posts, when not 0
	failBody  string // its body
	refuse    string // resource id whose creation is refused with 400
	// types are the resource types Gnocchi knows, each with its
	// attributes ("required" or "optional", "uuid" added for attributes of
	// type uuid). Once set, a creation is refused as Gnocchi refuses it: a
	// type not listed (404), a required attribute missing, an attribute
	// the type does not have or a uuid attribute that is not one (400).
	types map[string]map[string]string
}

// checkAttributes says why Gnocchi would refuse body as a resource of a
// type with attrs, or "".
func checkAttributes(attrs map[string]string, body map[string]any) string {
	for k, spec := range attrs {
		v, ok := body[k]
		if !ok {
			if strings.HasPrefix(spec, "required") {
				return "required key not provided @ data['" + k + "']"
			}
			continue
		}
		if strings.HasSuffix(spec, "uuid") {
			if s, _ := v.(string); len(strings.ReplaceAll(s, "-", "")) != 32 {
				return "not a valid value for dictionary value @ data['" + k + "']"
			}
		}
	}
	for k := range body {
		switch k {
		case "id", "project_id", "user_id", "started_at", "ended_at":
			continue
		}
		if _, ok := attrs[k]; !ok {
			return "extra keys not allowed @ data['" + k + "']"
		}
	}
	return ""
}

func newFakeGnocchi(t *testing.T, auth func(*http.Request) bool) *fakeGnocchi {
	g := &fakeGnocchi{auth: auth, resources: map[string]map[string]any{}, measures: map[string]map[string][]measure{}, metrics: map[string]metricBody{}}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.Close)
	return g
}

func (g *fakeGnocchi) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.auth(r) {
		http.Error(w, `{"code": 401}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/batch/resources/metrics/measures":
		g.posts++
		if r.URL.Query().Get("create_metrics") != "true" {
			http.Error(w, "want create_metrics=true", http.StatusBadRequest)
			return
		}
		if r.Header.Get("Accept") != "application/json" {
			// Gnocchi answers errors in HTML to anything that accepts */*.
			w.Header().Set("Content-Type", "text/html")
			http.Error(w, "<html>400 Bad Request</html>", http.StatusBadRequest)
			return
		}
		if g.fail != 0 {
			http.Error(w, g.failBody, g.fail)
			return
		}
		var body map[string]map[string]metricBody
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, ms := range body {
			for _, mb := range ms {
				// A metric Gnocchi refuses, naming neither it nor its resource.
				if mb.Unit == "refuse-me" {
					http.Error(w, `{"code": 400, "description": "Invalid input: unit"}`, http.StatusBadRequest)
					return
				}
			}
		}
		var unknown []map[string]string
		for rid := range body {
			if _, ok := g.resources[rid]; !ok {
				unknown = append(unknown, map[string]string{"resource_id": "uuid-of-" + rid, "original_resource_id": rid})
			}
		}
		if len(unknown) > 0 {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"code": 400, "title": "Bad Request",
				"description": map[string]any{"cause": "Unknown resources", "detail": unknown}})
			return
		}
		for rid, ms := range body {
			if g.measures[rid] == nil {
				g.measures[rid] = map[string][]measure{}
			}
			for name, mb := range ms {
				if _, ok := g.metrics[rid+"/"+name]; !ok {
					g.metrics[rid+"/"+name] = metricBody{Unit: mb.Unit, ArchivePolicyName: mb.ArchivePolicyName}
				}
				g.measures[rid][name] = append(g.measures[rid][name], mb.Measures...)
			}
		}
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/resource/"):
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, _ := body["id"].(string)
		if id == g.refuse {
			http.Error(w, `{"description": "Invalid input: extra keys not allowed"}`, http.StatusBadRequest)
			return
		}
		if _, ok := g.resources[id]; ok {
			http.Error(w, `{"description": "Resource already exists"}`, http.StatusConflict)
			return
		}
		typ := strings.TrimPrefix(r.URL.Path, "/v1/resource/")
		if g.types != nil {
			attrs, ok := g.types[typ]
			if !ok {
				http.Error(w, `{"description": "Resource type `+typ+` does not exist"}`, http.StatusNotFound)
				return
			}
			if why := checkAttributes(attrs, body); why != "" {
				http.Error(w, `{"description": "Invalid input: `+why+`"}`, http.StatusBadRequest)
				return
			}
		}
		body["type"] = typ
		g.resources[id] = body
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(body)
	default:
		http.NotFound(w, r)
	}
}

func batch(at time.Time) []meter.Measurement {
	return []meter.Measurement{
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12.5, Time: at, Host: "web1", ProjectID: "p1", UserID: "u1"},
		{Name: "disk.read.bytes", Kind: meter.Cumulative, Unit: "B", Value: 4096, Time: at, Host: "web1", ResourceID: "web1-sda",
			Labels: []meter.Label{{Key: "device", Value: "sda"}}},
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 13, Time: at.Add(time.Second), Host: "web1"},
	}
}

func TestKeystoneCatalogueAndUnknownResources(t *testing.T) {
	ks := keystonetest.New()
	defer ks.Close()
	g := newFakeGnocchi(t, func(r *http.Request) bool { return ks.Valid(r.Header.Get("X-Auth-Token")) })
	ks.AddEndpoint("metric", g.URL)
	clouds, err := ks.CloudsYAML(t.TempDir(), "")
	require.NoError(t, err)

	s, err := sink.Open(context.Background(), "gnocchi://?cloud=fake&clouds_file="+url.QueryEscape(clouds)+
		"&archive_policy=low&resource_type=host&resource_attrs=host,device")
	require.NoError(t, err)
	defer s.Close(context.Background())

	at := time.Date(2024, 5, 1, 14, 0, 0, 500_000_000, time.FixedZone("CEST", 2*3600))
	require.NoError(t, s.Write(context.Background(), batch(at)))
	require.Equal(t, 2, g.posts, "unknown resources: create, then post again once")
	require.Equal(t, map[string]any{"id": "web1", "project_id": "p1", "user_id": "u1", "host": "web1", "type": "host"}, g.resources["web1"])
	require.Equal(t, map[string]any{"id": "web1-sda", "host": "web1", "device": "sda", "type": "host"}, g.resources["web1-sda"])
	require.Equal(t, []measure{{Timestamp: "2024-05-01T12:00:00.5Z", Value: 12.5}, {Timestamp: "2024-05-01T12:00:01.5Z", Value: 13}},
		g.measures["web1"]["cpu.util"])
	require.Equal(t, metricBody{Unit: "B", ArchivePolicyName: "low"}, g.metrics["web1-sda/disk.read.bytes"])

	// Known resources now: one post.
	require.NoError(t, s.Write(context.Background(), batch(at.Add(time.Minute))))
	require.Equal(t, 3, g.posts)

	// A revoked token: 401, new token, same Write succeeds.
	ks.RevokeAll()
	require.NoError(t, s.Write(context.Background(), batch(at.Add(2*time.Minute))))
	require.Equal(t, 2, ks.Issued())
	require.Len(t, g.measures["web1"]["cpu.util"], 6)
}

// The level the levels stage writes (meterkit.state) never becomes a
// resource attribute; the other labels named do, and the measures and the
// change measurements arrive. Naming a meterkit.* label is refused.
func TestMeterkitLabelsNotStored(t *testing.T) {
	g := newFakeGnocchi(t, func(*http.Request) bool { return true })
	addr := strings.TrimPrefix(g.URL, "http://")
	_, err := sink.Open(context.Background(), "gnocchi+http://"+addr+"?auth=basic&resource_attrs=device,meterkit.state")
	require.ErrorContains(t, err, `"meterkit.state": labels prefixed "meterkit." are meterkit's own and never stored`)

	s, err := sink.Open(context.Background(), "gnocchi+http://"+addr+"?auth=basic&resource_type=host&resource_attrs=host,device")
	require.NoError(t, err)
	defer s.Close(context.Background())
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	require.NoError(t, s.Write(context.Background(), []meter.Measurement{
		{Name: "disk.util", Kind: meter.Gauge, Unit: "%", Value: 97, Time: at, Host: "web1", ResourceID: "web1-sda",
			Labels: []meter.Label{{Key: meter.StateLabel, Value: meter.StateCritical}, {Key: "device", Value: "sda"}}},
		{Name: meter.StateChange, Kind: meter.Gauge, Value: float64(meter.LevelCritical), Time: at, Host: "web1", ResourceID: "web1-sda",
			Labels: []meter.Label{{Key: meter.StateChangeMeter, Value: "disk.util"}, {Key: meter.StateChangeFrom, Value: meter.StateOK},
				{Key: meter.StateChangeTo, Value: meter.StateCritical}}},
	}))
	require.Equal(t, map[string]any{"id": "web1-sda", "host": "web1", "device": "sda", "type": "host"}, g.resources["web1-sda"])
	require.Equal(t, []measure{{Timestamp: "2024-05-01T12:00:00Z", Value: 97}}, g.measures["web1-sda"]["disk.util"])
	require.Equal(t, []measure{{Timestamp: "2024-05-01T12:00:00Z", Value: 3}}, g.measures["web1-sda"][meter.StateChange])
}

func TestBasicAuthAndFailures(t *testing.T) {
	var user string
	g := newFakeGnocchi(t, func(r *http.Request) bool {
		h := r.Header.Get("Authorization")
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
		user = string(b)
		return err == nil && strings.HasPrefix(h, "Basic ")
	})
	s, err := sink.Open(context.Background(), "gnocchi+http://"+strings.TrimPrefix(g.URL, "http://")+"?auth=basic")
	require.NoError(t, err)
	defer s.Close(context.Background())
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	require.NoError(t, s.Write(context.Background(), batch(at)))
	require.Equal(t, "admin:", user)

	// A resource Gnocchi refuses to create: its measurements are rejected,
	// the others stored.
	b := batch(at)
	b[1].ResourceID = "refused"
	g.refuse = "refused"
	err = s.Write(context.Background(), b)
	var pe *sink.PartialError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []int{1}, pe.Rejected)
	require.ErrorContains(t, err, `create generic resource "refused"`)

	// Measurements that cannot be measures.
	b = batch(at)
	b[0].Host = ""
	b[1].ResourceID = "a/b"
	b[2].Name = "x/y"
	err = s.Write(context.Background(), b)
	require.True(t, sink.IsPermanent(err), "%v", err)
	require.ErrorContains(t, err, "no ResourceID and no Host")
	require.ErrorContains(t, err, "'/'")

	// 400 for another reason: permanent; 503: retryable; both say where.
	g.fail, g.failBody = http.StatusBadRequest, `{"description": "Invalid input: timestamp"}`
	err = s.Write(context.Background(), batch(at))
	require.True(t, sink.IsPermanent(err), "%v", err)
	require.ErrorContains(t, err, "/v1/batch/resources/metrics/measures")
	require.ErrorContains(t, err, "Invalid input")
	g.fail = http.StatusServiceUnavailable
	err = s.Write(context.Background(), batch(at))
	require.Error(t, err)
	require.False(t, sink.IsPermanent(err))
	require.ErrorContains(t, err, "503")

	require.NoError(t, s.Close(context.Background()))
	require.ErrorIs(t, s.Write(context.Background(), batch(at)), sink.ErrClosed)
}

func TestNoSecretInErrors(t *testing.T) {
	ks := keystonetest.New()
	defer ks.Close()
	g := newFakeGnocchi(t, func(r *http.Request) bool { return ks.Valid(r.Header.Get("X-Auth-Token")) })
	ks.AddEndpoint("metric", g.URL)
	clouds, err := ks.CloudsYAML(t.TempDir(), "")
	require.NoError(t, err)
	s, err := New(WithCloud("fake"), WithCloudsFile(clouds))
	require.NoError(t, err)
	g.fail, g.failBody = http.StatusInternalServerError, "echo tok-1-7f3a9c "+keystonetest.Password
	err = s.Write(context.Background(), batch(time.Now()))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "tok-1-7f3a9c")
	require.NotContains(t, err.Error(), keystonetest.Password)
	require.Contains(t, err.Error(), "[REDACTED]")

	// Environment credentials with a wrong password.
	t.Setenv("OS_CLOUD", "")
	t.Setenv("OS_AUTH_URL", ks.AuthURL())
	t.Setenv("OS_USERNAME", keystonetest.User)
	t.Setenv("OS_PASSWORD", "Env-Pa55-wrong")
	t.Setenv("OS_PROJECT_NAME", keystonetest.Project)
	t.Setenv("OS_USER_DOMAIN_NAME", "Default")
	t.Setenv("OS_PROJECT_DOMAIN_NAME", "Default")
	s2, err := sink.Open(context.Background(), "gnocchi://")
	require.NoError(t, err)
	err = s2.Write(context.Background(), batch(time.Now()))
	require.Error(t, err)
	require.False(t, sink.IsPermanent(err))
	require.NotContains(t, err.Error(), "Env-Pa55-wrong")
	require.Contains(t, err.Error(), "401")
}

func TestURLs(t *testing.T) {
	for _, c := range []struct {
		url, err string
	}{
		{"gnocchi://?cloud=x&resource_type=generic&archive_policy=low", ""},
		{"gnocchi+http://127.0.0.1:8041?auth=basic&user=bob", ""},
		{"gnocchi+https://gnocchi.example:8041/?auth=keystone&cloud=x", ""},
		{"gnocchi://host:8041", "takes no host"},
		{"gnocchi+http://?auth=basic", "has no host"},
		{"gnocchi://?auth=basic", "needs Gnocchi's address"},
		{"gnocchi://?auth=digest", "not keystone or basic"},
		{"gnocchi://?cloud=x&user=bob", "goes with auth=basic"},
		{"gnocchi://?cloud=x&bogus=1", `unknown parameter "bogus"`},
		{"gnocchi://?cloud=x&cloud=y", "given 2 times"},
		{"gnocchi://?cloud=x&timeout=-1s", "not a positive duration"},
		{"gnocchi://u:p@/?cloud=x", "takes no user"},
		{"gnocchi://?cloud=x&resource_types=none", ""},
		{"gnocchi://?cloud=x&resource_types=all", "not default or none"},
	} {
		u, err := url.Parse(c.url)
		require.NoError(t, err)
		_, err = urlOptions(u)
		if c.err == "" {
			require.NoError(t, err, c.url)
		} else {
			require.ErrorContains(t, err, c.err, c.url)
		}
	}
	_, err := New(WithBasicAuth(""))
	require.ErrorContains(t, err, "needs the endpoint")
}

// Gnocchi refuses a whole batch for one bad metric without saying which
// (the fake refuses the unit "refuse-me"): the sink halves the batch until
// it finds it,
// rejects only its measurements, and the others are stored.
func TestRefusedBatchIsBisected(t *testing.T) {
	g := newFakeGnocchi(t, func(*http.Request) bool { return true })
	s, err := sink.Open(context.Background(), "gnocchi+http://"+strings.TrimPrefix(g.URL, "http://")+"?auth=basic")
	require.NoError(t, err)
	defer s.Close(context.Background())
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var b []meter.Measurement
	for i := range 40 {
		b = append(b, meter.Measurement{Name: "m" + strconv.Itoa(i%8), Kind: meter.Gauge, Unit: "B", Value: float64(i),
			Time: at.Add(time.Duration(i) * time.Second), ResourceID: "r" + strconv.Itoa(i%5)})
	}
	b[17].Unit = "refuse-me" // metric m1 of resource r2 (i%8 == 1, i%5 == 2)
	require.NoError(t, s.Write(context.Background(), b[:16]), "resources created")
	g.mu.Lock()
	g.posts = 0
	g.mu.Unlock()

	err = s.Write(context.Background(), b)
	var pe *sink.PartialError
	require.ErrorAs(t, err, &pe, "%v", err)
	// Every measurement of the refused metric goes with it: m1 of r2.
	var want []int
	for i := range b {
		if i%8 == 1 && i%5 == 2 {
			want = append(want, i)
		}
	}
	require.Equal(t, want, pe.Rejected)
	require.ErrorContains(t, err, "metric m1 of resource r2")
	require.ErrorContains(t, err, "Invalid input: unit")
	g.mu.Lock()
	defer g.mu.Unlock()
	stored := 0
	for _, ms := range g.measures {
		for _, m := range ms {
			stored += len(m)
		}
	}
	require.Equal(t, 16+len(b)-len(want), stored, "the other measurements are stored")
	require.LessOrEqual(t, g.posts, 1+2*6, "about 2·log2(metrics) extra requests: %d", g.posts)
}

// A batch refused for a reason that holds for every part of it costs a
// bounded number of requests, and is refused whole.
func TestBisectIsBounded(t *testing.T) {
	g := newFakeGnocchi(t, func(*http.Request) bool { return true })
	s, err := sink.Open(context.Background(), "gnocchi+http://"+strings.TrimPrefix(g.URL, "http://")+"?auth=basic")
	require.NoError(t, err)
	defer s.Close(context.Background())
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var b []meter.Measurement
	for i := range 500 {
		b = append(b, meter.Measurement{Name: "m", Kind: meter.Gauge, Value: 1, Time: at, ResourceID: "r" + strconv.Itoa(i)})
	}
	g.fail, g.failBody = http.StatusBadRequest, `{"description": "Invalid input: archive policy"}`
	err = s.Write(context.Background(), b)
	require.True(t, sink.IsPermanent(err), "%v", err)
	require.ErrorContains(t, err, "not tried alone")
	g.mu.Lock()
	defer g.mu.Unlock()
	require.LessOrEqual(t, g.posts, 1+32)
}

// Gnocchi (and the fake) checks the measures before the resources: a batch
// with a bad metric and resources it does not know yet is refused for the
// metric, and the halves are then answered "Unknown resources". Those must
// be created, and only the bad metric's measurements rejected.
func TestRefusedMetricAmongUnknownResources(t *testing.T) {
	g := newFakeGnocchi(t, func(*http.Request) bool { return true })
	s, err := sink.Open(context.Background(), "gnocchi+http://"+strings.TrimPrefix(g.URL, "http://")+"?auth=basic")
	require.NoError(t, err)
	defer s.Close(context.Background())
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	b := batch(at)
	b = append(b, meter.Measurement{Name: "bad", Kind: meter.Gauge, Unit: "refuse-me", Value: 1, Time: at, ResourceID: "new-resource"})
	err = s.Write(context.Background(), b)
	var pe *sink.PartialError
	require.ErrorAs(t, err, &pe, "%v", err)
	require.Equal(t, []int{3}, pe.Rejected)
	g.mu.Lock()
	defer g.mu.Unlock()
	require.Len(t, g.measures["web1"]["cpu.util"], 2)
	require.Len(t, g.measures["web1-sda"]["disk.read.bytes"], 1)
	require.Empty(t, g.measures["new-resource"])
}
