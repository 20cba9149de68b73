package riemann_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/riemann"
	"github.com/meterkit/meter/sink/riemann/riemanntest"
	"github.com/meterkit/meter/sink/sinktest"
)

// The store is riemanntest's server, one per rule; Read returns its index
// (the latest event per host and service, as Riemann keeps them) without
// the receipts, turned back into measurements.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []riemann.Option
	}{
		{"Plain", nil},
		{"Receipts", []riemann.Option{riemann.WithReceipts(10 * time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srv *riemanntest.Server
			sinktest.Run(t, sinktest.Harness{
				New: func(t *testing.T) sink.Sink {
					srv = riemanntest.NewServer(t)
					s, err := riemann.New(srv.Addr(), append([]riemann.Option{riemann.WithDefaultHost("publisher-1")}, tc.opts...)...)
					require.NoError(t, err)
					return s
				},
				Read: func(*testing.T) []meter.Measurement { return indexOf(srv) },
				// A ttl Riemann cannot read: the event is refused before it is sent.
				Refused: &meter.Measurement{Name: "refused", Kind: meter.Gauge, Value: 1, Time: t0, Host: "web1",
					Labels: []meter.Label{{Key: riemann.LabelTTL, Value: "soon"}}},
				Stall: func(*testing.T) func() {
					srv.Stall(0)
					return srv.Release
				},
			})
		})
	}
}

// indexOf returns the latest event per host and service, receipts left
// out, as measurements: attributes unit, resource_id, project_id, user_id
// and kind back in their fields, the others as labels.
func indexOf(srv *riemanntest.Server) []meter.Measurement {
	events, _ := measurementsOf(srv)
	latest := map[[2]string]int{}
	var out []meter.Measurement
	for _, e := range events {
		m := meter.Measurement{Name: e.Service, Value: e.Metric, Time: e.Time, Host: e.Host}
		for k, v := range e.Attributes {
			switch k {
			case "unit":
				m.Unit = v
			case "resource_id":
				m.ResourceID = v
			case "project_id":
				m.ProjectID = v
			case "user_id":
				m.UserID = v
			case "kind":
				m.Kind, _ = meter.ParseKind(v)
			default:
				m.Labels = append(m.Labels, meter.Label{Key: k, Value: v})
			}
		}
		key := [2]string{e.Host, e.Service}
		if i, ok := latest[key]; ok {
			out[i] = m
			continue
		}
		latest[key] = len(out)
		out = append(out, m)
	}
	return out
}
