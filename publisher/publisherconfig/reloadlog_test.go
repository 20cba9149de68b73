package publisherconfig_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/publisher/publisherconfig"
)

// The logger is made once, at start: a changed log: refuses the reload
// rather than being ignored.
func TestReloadRefusesALogChange(t *testing.T) {
	ctx := context.Background()
	v1, err := publisherconfig.Parse("p.yaml", []byte("sinks: [console://]\n"))
	require.NoError(t, err)
	p1, err := v1.Open(ctx)
	require.NoError(t, err)
	defer p1.Close(ctx)
	v2, err := publisherconfig.Parse("p.yaml", []byte("sinks: [console://]\nlog: {level: warn}\n"))
	require.NoError(t, err)
	_, _, err = v1.Reload(ctx, p1, v2)
	require.ErrorIs(t, err, publisherconfig.ErrRestart)
	require.ErrorContains(t, err, "log.level")
}
