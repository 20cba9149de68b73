package agentconfig_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/agent/agentconfig"
	_ "github.com/meterkit/meter/driver/notification"
)

// A push source that requires a spool (driver.SpoolRequirer) is refused by
// the config check when the file gives no spool.
func TestOpenRefusesAPushSourceThatRequiresASpoolWithoutOne(t *testing.T) {
	text := "drivers:\n  - type: cpu\n  - name: bus\n    type: notification\n"
	p := write(t, "agent.yaml", text)
	c, err := agentconfig.Load(p)
	require.NoError(t, err)
	_, err = c.Open()
	require.ErrorContains(t, err, p+`:3: drivers[1]: driver "bus" (type notification) requires a spool`)

	p = write(t, "agent.yaml", "spool: "+t.TempDir()+"\n"+text)
	c, err = agentconfig.Load(p)
	require.NoError(t, err)
	parts, err := c.Open()
	require.NoError(t, err)
	parts.Close()
}
