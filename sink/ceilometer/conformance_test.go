package ceilometer

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/internal/keystone/keystonetest"
	"github.com/meterkit/meter/sink/sinktest"
)

// v2Timestamp is how the sink writes sample timestamps.
const v2Timestamp = "2006-01-02T15:04:05.000000-07:00"

// The v2 sink against the fake v2 API and Keystone of v2_test.go, one pair
// per rule. The API refuses meter "refused" with a 400; Stall makes it hold
// requests until released.
func TestV2Conformance(t *testing.T) {
	var (
		api  *v2API
		mu   sync.Mutex
		hold chan struct{}
	)
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			ks := keystonetest.New()
			t.Cleanup(ks.Close)
			api = &v2API{ks: ks, got: map[string][]map[string]any{}, failFor: map[string]int{"refused": http.StatusBadRequest},
				body: `{"error_message": "refused by the test"}`}
			api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				h := hold
				mu.Unlock()
				if h != nil {
					select {
					case <-h:
					case <-r.Context().Done():
						return
					}
				}
				api.serve(w, r)
			}))
			t.Cleanup(api.Close)
			ks.AddEndpoint("metering", api.URL+"/")
			clouds, err := ks.CloudsYAML(t.TempDir(), "")
			require.NoError(t, err)
			s, err := NewV2(WithCloud("fake"), WithCloudsFile(clouds))
			require.NoError(t, err)
			return s
		},
		Read: func(t *testing.T) []meter.Measurement {
			api.mu.Lock()
			defer api.mu.Unlock()
			var out []meter.Measurement
			for _, samples := range api.got {
				for _, s := range samples {
					out = append(out, fromV2Sample(t, s))
				}
			}
			return out
		},
		// The API takes the resource id from Host when ResourceID is empty.
		Normalize: func(m meter.Measurement) meter.Measurement {
			if m.ResourceID == "" {
				m.ResourceID = m.Host
			}
			return m
		},
		Refused: &meter.Measurement{Name: "refused", Kind: meter.Gauge, Value: 1, Time: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), Host: "web1"},
		Stall: func(*testing.T) func() {
			mu.Lock()
			defer mu.Unlock()
			h := make(chan struct{})
			hold = h
			return func() {
				mu.Lock()
				hold = nil
				mu.Unlock()
				close(h)
			}
		},
	})
}

// fromV2Sample turns a sample the fake API got back into a measurement:
// host from resource_metadata, the other metadata as labels.
func fromV2Sample(t *testing.T, s map[string]any) meter.Measurement {
	t.Helper()
	str := func(k string) string { v, _ := s[k].(string); return v }
	m := meter.Measurement{Name: str("counter_name"), Unit: str("counter_unit"), ResourceID: str("resource_id"),
		ProjectID: str("project_id"), UserID: str("user_id")}
	var err error
	m.Kind, err = meter.ParseKind(str("counter_type"))
	require.NoError(t, err)
	m.Value, _ = s["counter_volume"].(float64)
	m.Time, err = time.Parse(v2Timestamp, str("timestamp"))
	require.NoError(t, err)
	md, _ := s["resource_metadata"].(map[string]any)
	for k, v := range md {
		v, _ := v.(string)
		if k == "host" {
			m.Host = v
			continue
		}
		m.Labels = append(m.Labels, meter.Label{Key: k, Value: v})
	}
	return m
}
