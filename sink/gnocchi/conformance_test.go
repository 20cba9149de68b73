package gnocchi

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/internal/keystone/keystonetest"
	"github.com/meterkit/meter/sink/sinktest"
)

// The sink against the fake Gnocchi of gnocchi_test.go (and Keystone, or
// basic auth), new ones per rule. The fake refuses the unit "refuse-me" as
// Gnocchi refuses a bad metric, without saying which; Stall makes it hold
// requests until released.
func TestConformance(t *testing.T) {
	t.Run("Keystone", func(t *testing.T) { conformance(t, false) })
	t.Run("Basic", func(t *testing.T) { conformance(t, true) })
}

func conformance(t *testing.T, basic bool) {
	var (
		g    *fakeGnocchi
		mu   sync.Mutex
		hold chan struct{}
	)
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			ks := keystonetest.New()
			t.Cleanup(ks.Close)
			g = newFakeGnocchi(t, func(r *http.Request) bool {
				if basic {
					return r.Header.Get("Authorization") != ""
				}
				return ks.Valid(r.Header.Get("X-Auth-Token"))
			})
			serve := g.Config.Handler
			g.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
				serve.ServeHTTP(w, r)
			})
			if basic {
				s, err := New(WithEndpoint(g.URL), WithBasicAuth("admin"))
				require.NoError(t, err)
				return s
			}
			ks.AddEndpoint("metric", g.URL)
			clouds, err := ks.CloudsYAML(t.TempDir(), "")
			require.NoError(t, err)
			s, err := New(WithCloud("fake"), WithCloudsFile(clouds))
			require.NoError(t, err)
			return s
		},
		Read: func(t *testing.T) []meter.Measurement {
			g.mu.Lock()
			defer g.mu.Unlock()
			var out []meter.Measurement
			for rid, metrics := range g.measures {
				res := g.resources[rid]
				project, _ := res["project_id"].(string)
				user, _ := res["user_id"].(string)
				for name, ms := range metrics {
					for _, x := range ms {
						at, err := time.Parse(time.RFC3339Nano, x.Timestamp)
						require.NoError(t, err)
						out = append(out, meter.Measurement{Name: name, Unit: g.metrics[rid+"/"+name].Unit, Value: x.Value, Time: at,
							ResourceID: rid, ProjectID: project, UserID: user})
					}
				}
			}
			return out
		},
		// Gnocchi keeps no kind, host or labels (without resource
		// attributes), and takes the resource id from Host when there is
		// no ResourceID.
		Normalize: func(m meter.Measurement) meter.Measurement {
			if m.ResourceID == "" {
				m.ResourceID = m.Host
			}
			m.Kind, m.Host, m.Labels = 0, "", nil
			return m
		},
		Refused: &meter.Measurement{Name: "refused", Kind: meter.Gauge, Unit: "refuse-me", Value: 1,
			Time: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), Host: "host-refused"},
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
