package agentconfig_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/agent/agentconfig"
)

// The logger is made once, at start: a changed log: refuses the reload
// rather than being ignored.
func TestReloadRefusesALogChange(t *testing.T) {
	v1, err := agentconfig.Parse("a.yaml", []byte("drivers: [{type: load}]\n"))
	require.NoError(t, err)
	p1, err := v1.Open()
	require.NoError(t, err)
	defer p1.Close()
	v2, err := agentconfig.Parse("a.yaml", []byte("drivers: [{type: load}]\nlog: {level: debug, format: json}\n"))
	require.NoError(t, err)
	_, _, err = v1.Reload(p1, v2)
	require.ErrorIs(t, err, agentconfig.ErrRestart)
	require.ErrorContains(t, err, "log.level, log.format")
}
