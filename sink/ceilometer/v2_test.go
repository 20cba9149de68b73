package ceilometer

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/internal/keystone/keystonetest"
)

// v2API is a fake Ceilometer v2 API that enforces the contract the sink
// relies on: a valid X-Auth-Token, a JSON list of samples whose
// counter_name matches the path, no client-set message_id, 201 on success.
type v2API struct {
	*httptest.Server
	ks *keystonetest.Server

	mu      sync.Mutex
	got     map[string][]map[string]any
	posts   int
	failFor map[string]int // meter name -> status to answer
	body    string         // body of failures
}

func newV2API(t *testing.T, ks *keystonetest.Server) *v2API {
	a := &v2API{ks: ks, got: map[string][]map[string]any{}, failFor: map[string]int{}}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *v2API) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.posts++
	if !a.ks.Valid(r.Header.Get("X-Auth-Token")) {
		http.Error(w, `{"error_message": "Authentication required"}`, http.StatusUnauthorized)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/v2/meters/")
	if r.Method != http.MethodPost || !ok || name == "" {
		http.NotFound(w, r)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	if st := a.failFor[name]; st != 0 {
		http.Error(w, a.body, st)
		return
	}
	var samples []map[string]any
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &samples); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, s := range samples {
		if _, has := s["message_id"]; has {
			http.Error(w, `{"error_message": "message_id is read-only"}`, http.StatusBadRequest)
			return
		}
		for _, k := range []string{"counter_name", "counter_type", "counter_unit", "counter_volume", "resource_id", "timestamp", "resource_metadata", "source"} {
			if _, has := s[k]; !has {
				http.Error(w, "missing "+k, http.StatusBadRequest)
				return
			}
		}
		if s["counter_name"] != name {
			http.Error(w, "counter_name does not match the URL", http.StatusBadRequest)
			return
		}
	}
	a.got[name] = append(a.got[name], samples...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(b)
}

func v2Batch() []meter.Measurement {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	return []meter.Measurement{
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12.5, Time: at, Host: "web1", ProjectID: "p1", UserID: "u1"},
		{Name: "disk.read.bytes", Kind: meter.Cumulative, Unit: "B", Value: 4096, Time: at, Host: "web1", ResourceID: "web1-sda",
			Labels: []meter.Label{{Key: "device", Value: "sda"}}},
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 13, Time: at.Add(time.Second), Host: "web2"},
	}
}

func newV2Fixture(t *testing.T) (*keystonetest.Server, *v2API, string) {
	ks := keystonetest.New()
	t.Cleanup(ks.Close)
	api := newV2API(t, ks)
	ks.AddEndpoint("metering", api.URL+"/")
	clouds, err := ks.CloudsYAML(t.TempDir(), "")
	require.NoError(t, err)
	return ks, api, clouds
}

func TestV2Contract(t *testing.T) {
	ks, api, clouds := newV2Fixture(t)
	s, err := sink.Open(context.Background(), "ceilometer://?cloud=fake&clouds_file="+clouds+"&source=meterkit")
	require.NoError(t, err)
	defer s.Close(context.Background())

	require.NoError(t, s.Write(context.Background(), v2Batch()))
	require.Len(t, api.got["cpu.util"], 2)
	require.Len(t, api.got["disk.read.bytes"], 1)
	d := api.got["disk.read.bytes"][0]
	require.Equal(t, "cumulative", d["counter_type"])
	require.Equal(t, "web1-sda", d["resource_id"])
	require.Equal(t, map[string]any{"device": "sda", "host": "web1"}, d["resource_metadata"])
	require.Equal(t, "meterkit", d["source"])
	require.NotContains(t, d, "project_id")
	c := api.got["cpu.util"][0]
	require.Equal(t, "p1", c["project_id"])
	require.Equal(t, "u1", c["user_id"])
	require.Equal(t, "2024-05-01T12:00:00.000000+00:00", c["timestamp"])
	require.Equal(t, 1, ks.Issued())

	// An expired (revoked) token: 401, the sink re-authenticates and the
	// batch goes through in the same Write.
	ks.RevokeAll()
	require.NoError(t, s.Write(context.Background(), v2Batch()))
	require.Equal(t, 2, ks.Issued())
	require.Len(t, api.got["cpu.util"], 4)
}

// The v2 API receives no meterkit.* label in resource_metadata (the level
// the levels stage writes); the other labels arrive.
func TestV2DropsMeterkitLabels(t *testing.T) {
	_, api, clouds := newV2Fixture(t)
	s, err := sink.Open(context.Background(), "ceilometer://?cloud=fake&clouds_file="+clouds)
	require.NoError(t, err)
	defer s.Close(context.Background())

	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	require.NoError(t, s.Write(context.Background(), []meter.Measurement{
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 97, Time: at, Host: "web1",
			Labels: []meter.Label{{Key: meter.StateLabel, Value: meter.StateCritical}, {Key: "cpu", Value: "0"}}},
		{Name: meter.StateChange, Kind: meter.Gauge, Value: float64(meter.LevelCritical), Time: at, Host: "web1",
			Labels: []meter.Label{{Key: meter.StateChangeMeter, Value: "cpu.util"}, {Key: meter.StateChangeFrom, Value: meter.StateOK},
				{Key: meter.StateChangeTo, Value: meter.StateCritical}}},
	}))
	require.Len(t, api.got["cpu.util"], 1)
	require.Equal(t, map[string]any{"cpu": "0", "host": "web1"}, api.got["cpu.util"][0]["resource_metadata"])
	require.Len(t, api.got[meter.StateChange], 1, "the change is a meter like any other")
	require.Equal(t, map[string]any{"meter": "cpu.util", "from": "ok", "to": "critical", "host": "web1"},
		api.got[meter.StateChange][0]["resource_metadata"])
}

func TestV2Failures(t *testing.T) {
	_, api, clouds := newV2Fixture(t)
	s, err := NewV2(WithCloud("fake"), WithCloudsFile(clouds))
	require.NoError(t, err)
	defer s.Close(context.Background())

	// A 400 for one meter rejects its measurements only.
	api.failFor["disk.read.bytes"] = http.StatusBadRequest
	err = s.Write(context.Background(), v2Batch())
	var pe *sink.PartialError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []int{1}, pe.Rejected)
	require.Contains(t, err.Error(), `meter "disk.read.bytes"`)
	require.Contains(t, err.Error(), "400 Bad Request")

	// All refused: Permanent.
	api.failFor["cpu.util"] = http.StatusUnprocessableEntity
	err = s.Write(context.Background(), v2Batch())
	require.True(t, sink.IsPermanent(err), "%v", err)

	// A 5xx is retryable.
	api.failFor["cpu.util"] = http.StatusServiceUnavailable
	err = s.Write(context.Background(), v2Batch())
	require.Error(t, err)
	require.False(t, sink.IsPermanent(err))
	require.Contains(t, err.Error(), "503")

	// An invalid measurement is rejected before anything is sent.
	clear(api.failFor)
	b := v2Batch()
	b[0].Host = ""
	err = s.Write(context.Background(), b)
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []int{0}, pe.Rejected)

	require.NoError(t, s.Close(context.Background()))
	require.ErrorIs(t, s.Write(context.Background(), b), sink.ErrClosed)
}

func TestV2NoSecretInErrors(t *testing.T) {
	ks, api, clouds := newV2Fixture(t)

	// A server that echoes the token and the password back in its error.
	s, err := NewV2(WithCloud("fake"), WithCloudsFile(clouds))
	require.NoError(t, err)
	api.failFor["cpu.util"] = http.StatusInternalServerError
	api.body = "boom: token tok-1-7f3a9c password " + keystonetest.Password
	err = s.Write(context.Background(), v2Batch())
	require.Error(t, err)
	require.NotContains(t, err.Error(), "tok-1-7f3a9c")
	require.NotContains(t, err.Error(), keystonetest.Password)
	require.Contains(t, err.Error(), "[REDACTED]")

	// A wrong password: the error names Keystone, never the password.
	bad, err := ks.CloudsYAML(t.TempDir(), "wrong-Pa55word")
	require.NoError(t, err)
	s2, err := NewV2(WithCloud("fake"), WithCloudsFile(bad))
	require.NoError(t, err)
	err = s2.Write(context.Background(), v2Batch())
	require.Error(t, err)
	require.False(t, sink.IsPermanent(err))
	require.Contains(t, err.Error(), ks.AuthURL())
	require.NotContains(t, err.Error(), "wrong-Pa55word")
}

func TestV2NoCatalogueEntry(t *testing.T) {
	ks := keystonetest.New()
	defer ks.Close()
	clouds, err := ks.CloudsYAML(t.TempDir(), "")
	require.NoError(t, err)
	s, err := NewV2(WithCloud("fake"), WithCloudsFile(clouds))
	require.NoError(t, err)
	err = s.Write(context.Background(), v2Batch())
	require.ErrorContains(t, err, `service type "metering"`)
	require.False(t, sink.IsPermanent(err))
	require.False(t, errors.Is(err, sink.ErrClosed))
}
