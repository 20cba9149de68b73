package e2e

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/publisher/publisherconfig"
	_ "github.com/meterkit/meter/sink/gnocchi"
	_ "github.com/meterkit/meter/sink/web"
)

// (Here rather than in publisherconfig, whose tests list the registered
// schemes: these need the gnocchi and web sinks.)
//
// A SIGHUP after a password was rotated in the file a sink's URL names
// rebuilds that sink (its lane goes on under its name); the web sink's
// token file, which the sink reads again by itself, does not rebuild it.
func TestReloadRebuildsASinkWhoseSecretFileChanged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clouds := filepath.Join(dir, "clouds.yaml")
	require.NoError(t, os.WriteFile(clouds, []byte(`clouds:
  lab:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: meterkit
      project_name: service
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
`), 0o600))
	password := filepath.Join(dir, "gnocchi.password")
	token := filepath.Join(dir, "web.token")
	require.NoError(t, os.WriteFile(password, []byte("old\n"), 0o600))
	require.NoError(t, os.WriteFile(token, []byte("token-1\n"), 0o600))
	text := []byte(`
sinks:
  - {name: out, url: "discard://"}
  - name: gnocchi
    url: "gnocchi://?cloud=lab&clouds_file=` + url.QueryEscape(clouds) + `&password_file=` + url.QueryEscape(password) + `"
  - name: view
    url: "web://127.0.0.1:0?token_file=` + url.QueryEscape(token) + `"
`)
	load := func() *publisherconfig.Config {
		t.Helper()
		c, err := publisherconfig.Parse(filepath.Join(dir, "p.yaml"), text)
		require.NoError(t, err)
		return c
	}
	byName := func(p *publisherconfig.Parts) map[string]publisherconfig.Opened {
		m := map[string]publisherconfig.Opened{}
		for _, s := range p.Sinks {
			m[s.Name] = s
		}
		return m
	}
	v1 := load()
	p1, err := v1.Open(ctx)
	require.NoError(t, err)
	defer p1.Close(ctx)

	// The token rotated: the web sink reads it again itself, nothing is
	// rebuilt.
	require.NoError(t, os.WriteFile(token, []byte("token-2\n"), 0o600))
	p, changes, err := v1.Reload(ctx, p1, load())
	require.NoError(t, err)
	require.Empty(t, changes)
	require.Same(t, byName(p1)["view"].Sink, byName(p)["view"].Sink)

	// The Keystone password rotated: the gnocchi sink is rebuilt.
	require.NoError(t, os.WriteFile(password, []byte("new\n"), 0o600))
	v2 := load()
	p2, changes, err := v1.Reload(ctx, p1, v2)
	require.NoError(t, err)
	rebuilt := byName(p2)["gnocchi"]
	defer rebuilt.Sink.Close(ctx)
	require.Equal(t, []string{"sinks: gnocchi: a secret file its URL names changed (rebuilt; its lane goes on)"}, changes)
	require.NotSame(t, byName(p1)["gnocchi"].Sink, rebuilt.Sink)
	require.Same(t, byName(p1)["out"].Sink, byName(p2)["out"].Sink)
	require.Same(t, byName(p1)["view"].Sink, byName(p2)["view"].Sink)

	_, changes, err = v2.Reload(ctx, p2, load())
	require.NoError(t, err)
	require.Empty(t, changes, "the rotated file is the running one from then on")
}
