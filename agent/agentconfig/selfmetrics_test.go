package agentconfig_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/agent/agentconfig"
)

func TestSelfMetricsReportTheAgentsCounters(t *testing.T) {
	c, err := agentconfig.Parse("a.yaml", []byte("self_metrics: 30s\ndrivers: [{type: load}]\n"))
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, c.SelfMetrics)
	p, err := c.Open()
	require.NoError(t, err)
	defer p.Close()
	require.NotNil(t, p.Self)
	require.Equal(t, 30*time.Second, p.Self.Every)
	require.Len(t, c.Options(p), 4+2, "the agent's four, load and self_metrics")

	ms, err := p.Self.Collect(context.Background())
	require.NoError(t, err)
	require.Empty(t, ms, "nothing before Bind")

	p.Self.Bind(func() agent.Stats { return agent.Stats{AckedMeasurements: 7, Queued: 3, QueuedBytes: 4096} })
	ms, err = p.Self.Collect(context.Background())
	require.NoError(t, err)
	by := map[string]meter.Measurement{}
	for _, m := range ms {
		m.Host = "h"
		require.NoError(t, m.Validate(), m.Name)
		by[m.Name] = m
	}
	require.Equal(t, meter.Measurement{Name: "meterkit.agent.acked", Kind: meter.Cumulative, Value: 7}, strip(by["meterkit.agent.acked"]))
	require.Equal(t, meter.Measurement{Name: "meterkit.agent.queued_batches", Kind: meter.Gauge, Value: 3}, strip(by["meterkit.agent.queued_batches"]))
	require.Equal(t, meter.Measurement{Name: "meterkit.agent.queued_bytes", Kind: meter.Gauge, Unit: "B", Value: 4096}, strip(by["meterkit.agent.queued_bytes"]))
	require.Contains(t, by, "meterkit.agent.dropped")

	// Off by default; a reload keeps the same driver, and a change needs a
	// restart.
	off, err := agentconfig.Parse("a.yaml", []byte("drivers: [{type: load}]\n"))
	require.NoError(t, err)
	require.Zero(t, off.SelfMetrics)
	same, err := agentconfig.Parse("a.yaml", []byte("self_metrics: 30s\ndrivers: [{type: load}, {type: cpu}]\n"))
	require.NoError(t, err)
	np, _, err := c.Reload(p, same)
	require.NoError(t, err)
	defer (&agentconfig.Parts{Drivers: np.Drivers[1:]}).Close()
	require.Same(t, p.Self, np.Self)
	require.Len(t, same.ReconfigureOptions(np), 3, "load, cpu and self_metrics")
	_, _, err = c.Reload(p, off)
	require.ErrorIs(t, err, agentconfig.ErrRestart)
	require.ErrorContains(t, err, "self_metrics")

	_, err = agentconfig.Parse("a.yaml", []byte("drivers: [{name: self_metrics, type: load}]\n"))
	require.ErrorContains(t, err, `a.yaml:1: drivers[0].name: "self_metrics" is the name of the instance that self_metrics: adds`)
	_, err = agentconfig.Parse("a.yaml", []byte("self_metrics: -1s\n"))
	require.ErrorContains(t, err, "a.yaml:1: self_metrics: want a positive duration")
}

func strip(m meter.Measurement) meter.Measurement { m.Time, m.Host = time.Time{}, ""; return m }
