package agentconfig

import (
	"context"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/internal/statslog"
)

// SelfMetricsName is the name of the driver instance that self_metrics:
// adds; no instance of the file may take it.
const SelfMetricsName = "self_metrics"

// SelfMetricsPrefix starts the names of the measurements of self_metrics:.
const SelfMetricsPrefix = "meterkit.agent."

// SelfMetrics is the driver that self_metrics: adds: every Every it reports
// the agent's own counters as measurements, SelfMetricsPrefix and the key
// of the "agent stats" line (meterkit.agent.acked,
// meterkit.agent.queued_batches, ...), counts cumulative and levels gauges,
// sizes in bytes (B), other counts without a unit. It reports nothing until
// Bind gives it the agent's Stats.
type SelfMetrics struct {
	Every time.Duration // its collection interval

	stats atomic.Pointer[func() agent.Stats]
}

// Bind gives s the counters it reports (the agent's Stats method, once
// the agent is made).
func (s *SelfMetrics) Bind(stats func() agent.Stats) { s.stats.Store(&stats) }

// Collect returns one measurement per counter of the agent's stats line.
func (s *SelfMetrics) Collect(context.Context) ([]meter.Measurement, error) {
	f := s.stats.Load()
	if f == nil {
		return nil, nil
	}
	st := reflect.ValueOf((*f)())
	now := time.Now()
	fields := statslog.Fields(st.Type())
	out := make([]meter.Measurement, 0, len(fields))
	for _, fd := range fields {
		m := meter.Measurement{Name: SelfMetricsPrefix + fd.Key, Kind: meter.Cumulative, Value: statslog.Number(st, fd), Time: now}
		if fd.Gauge {
			m.Kind = meter.Gauge
		}
		if strings.HasSuffix(fd.Key, "_bytes") {
			m.Unit = "B"
		}
		out = append(out, m)
	}
	return out, nil
}
