package publisherconfig_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/publisher/publisherconfig"
)

const pubV1 = `
listen: tcp://127.0.0.1:7711
sinks:
  - {name: out, url: "console://"}
  - {name: err, url: "console://stderr"}
`

func TestReloadKeepsUnchangedSinksAndRefusesRestartKeys(t *testing.T) {
	ctx := context.Background()
	v1, err := publisherconfig.Parse("p.yaml", []byte(pubV1))
	require.NoError(t, err)
	p1, err := v1.Open(ctx)
	require.NoError(t, err)
	defer p1.Close(ctx)

	v2, err := publisherconfig.Parse("p.yaml", []byte(`
listen: tcp://127.0.0.1:7711
sinks:
  - {name: out, url: "console://"}
  - {name: err, url: "console://?format=json"}
  - {name: file, url: "console://`+t.TempDir()+`/out.jsonl"}
`))
	require.NoError(t, err)
	p2, changes, err := v1.Reload(ctx, p1, v2)
	require.NoError(t, err)
	require.Len(t, p2.Sinks, 3)
	defer func() { _ = p2.Sinks[1].Sink.Close(ctx); _ = p2.Sinks[2].Sink.Close(ctx) }()
	require.Same(t, p1.Sinks[0].Sink, p2.Sinks[0].Sink, "name and URL unchanged: the running sink")
	require.NotSame(t, p1.Sinks[1].Sink, p2.Sinks[1].Sink, "URL changed: rebuilt under its name")
	require.Equal(t, "err", p2.Sinks[1].Name)
	require.ElementsMatch(t, []string{"sinks: err: URL changed (rebuilt; its lane goes on)", "sinks: file: added"}, changes)
	require.Len(t, v2.ReconfigureOptions(p2), 3)

	v3, err := publisherconfig.Parse("p.yaml", []byte(`
listen: tcp://127.0.0.1:7712
spool: /var/lib/elsewhere
sinks:
  - {name: out, url: "console://"}
`))
	require.NoError(t, err)
	_, _, err = v2.Reload(ctx, p2, v3)
	require.ErrorIs(t, err, publisherconfig.ErrRestart)
	require.ErrorContains(t, err, "listen, spool")
}
