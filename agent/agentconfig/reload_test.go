package agentconfig_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/agent/agentconfig"
)

const reloadV1 = `
publishers: {connect: [tcp://10.0.0.5:7711], tenant: acme}
interval: 10s
drivers:
  - type: cpu
  - {name: seq-a, type: synthetic, interval: 1s, settings: {per_collection: 2}}
  - {name: seq-b, type: synthetic, settings: {per_collection: 3}}
stages:
  - {type: select, meters: ["synthetic.*"]}
`

func TestReloadKeepsTheUnchangedAndOpensTheRest(t *testing.T) {
	v1, err := agentconfig.Parse("a.yaml", []byte(reloadV1))
	require.NoError(t, err)
	p1, err := v1.Open()
	require.NoError(t, err)
	defer p1.Close()
	byName := func(p *agentconfig.Parts) map[string]agentconfig.Driver {
		m := map[string]agentconfig.Driver{}
		for _, d := range p.Drivers {
			m[d.Name] = d
		}
		return m
	}

	same, err := agentconfig.Parse("a.yaml", []byte(reloadV1))
	require.NoError(t, err)
	p, changes, err := v1.Reload(p1, same)
	require.NoError(t, err)
	require.Empty(t, changes)
	require.Same(t, p1.Stage, p.Stage, "unchanged stages are the running ones")

	v2, err := agentconfig.Parse("a.yaml", []byte(`
publishers: {connect: [tcp://10.0.0.5:7711], tenant: acme}
interval: 10s
drivers:
  - {name: seq-a, type: synthetic, interval: 5s, settings: {per_collection: 2}}
  - {name: seq-b, type: synthetic, settings: {per_collection: 4}}
  - type: load
stages:
  - {type: select, meters: ["synthetic.*"]}
  - {type: unit, meters: ["synthetic.*"], factor: 2}
`))
	require.NoError(t, err)
	p2, changes, err := v1.Reload(p1, v2)
	require.NoError(t, err)
	old, next := byName(p1), byName(p2)
	require.Same(t, old["seq-a"].Driver, next["seq-a"].Driver, "settings unchanged: the same driver, kept running")
	require.Equal(t, 5*time.Second, next["seq-a"].Interval, "under its new interval")
	require.NotSame(t, old["seq-b"].Driver, next["seq-b"].Driver, "settings changed: rebuilt")
	require.Contains(t, next, "load")
	require.NotContains(t, next, "cpu")
	require.NotSame(t, p1.Stage, p2.Stage)
	require.ElementsMatch(t, []string{
		"drivers: seq-a: interval 5s, timeout 0s (was 1s, 0s)",
		"drivers: seq-b: type or settings changed (rebuilt)",
		"drivers: load: added (load)",
		"drivers: cpu: removed",
		"stages: select,unit (was select)",
	}, changes)
	require.Len(t, v2.ReconfigureOptions(p2), 4, "the stages and three drivers")
}

func TestReloadRefusesKeysThatNeedARestart(t *testing.T) {
	v1, err := agentconfig.Parse("a.yaml", []byte(reloadV1))
	require.NoError(t, err)
	p1, err := v1.Open()
	require.NoError(t, err)
	defer p1.Close()
	v2, err := agentconfig.Parse("a.yaml", []byte(`
publishers: {connect: [tcp://10.0.0.5:7711], tenant: other}
id: renamed
spool: /var/lib/elsewhere
interval: 10s
drivers:
  - type: load
`))
	require.NoError(t, err)
	_, _, err = v1.Reload(p1, v2)
	require.ErrorIs(t, err, agentconfig.ErrRestart)
	require.ErrorContains(t, err, "publishers.tenant, id, spool")
}
