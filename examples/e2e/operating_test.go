package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/agent/agentconfig"
	"github.com/meterkit/meter/publisher/publisherconfig"
)

// documentedKeys returns the keys in the first column of the table that
// follows heading in docs/operating.md: `a.b`, `a.b.c`, and `x`, `y` when
// one row names several.
func documentedKeys(t *testing.T, doc, heading string) []string {
	t.Helper()
	i := strings.Index(doc, heading)
	require.GreaterOrEqual(t, i, 0, "docs/operating.md has %q", heading)
	var keys []string
	started := false
	for _, line := range strings.Split(doc[i:], "\n")[1:] {
		if !strings.HasPrefix(line, "|") {
			if started {
				break
			}
			continue
		}
		started = true
		first := strings.Split(line, "|")[1]
		for _, m := range regexp.MustCompile("`([a-z_][a-z_.]*)`").FindAllStringSubmatch(first, -1) {
			keys = append(keys, m[1])
		}
	}
	require.NotEmpty(t, keys)
	return keys
}

// yamlFor is a file setting key (a.b.c) to an empty mapping.
func yamlFor(key string) string {
	var b strings.Builder
	for i, k := range strings.Split(key, ".") {
		b.WriteString(strings.Repeat("  ", i) + k + ":\n")
	}
	return b.String()
}

// sampleKeys returns the top-level keys of a sample file, commented-out
// ones included.
func sampleKeys(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var keys []string
	for _, m := range regexp.MustCompile(`(?m)^(?:# )?([a-z_]+):`).FindAllStringSubmatch(string(b), -1) {
		keys = append(keys, m[1])
	}
	return keys
}

// Every key docs/operating.md lists is one the loaders know (strict
// decoding says "unknown key" otherwise), and every top-level key of the
// samples is listed.
func TestOperatingGuideKeys(t *testing.T) {
	b, err := os.ReadFile("../../docs/operating.md")
	require.NoError(t, err)
	doc := string(b)
	dir := t.TempDir()
	for _, c := range []struct {
		heading, sample string
		load            func(string) error
	}{
		{"Agent keys", "../agent/agent.yaml", func(p string) error { _, err := agentconfig.Load(p); return err }},
		{"Publisher keys", "../publisher/publisher.yaml", func(p string) error { _, err := publisherconfig.Load(p); return err }},
	} {
		keys := documentedKeys(t, doc, c.heading)
		for _, k := range keys {
			p := filepath.Join(dir, "x.yaml")
			require.NoError(t, os.WriteFile(p, []byte(yamlFor(k)), 0o600))
			if err := c.load(p); err != nil {
				require.NotContains(t, err.Error(), "unknown key", "%s: documented key %s", c.heading, k)
			}
		}
		top := map[string]bool{}
		for _, k := range keys {
			top[strings.Split(k, ".")[0]] = true
		}
		for _, k := range sampleKeys(t, c.sample) {
			require.True(t, top[k], "%s: key %s of %s is not in docs/operating.md", c.heading, k, c.sample)
		}
		require.True(t, slices.Contains(keys, "http"), "%s: http", c.heading)
	}
	// The check itself fails on a key the loader does not know.
	p := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(p, []byte(yamlFor("publishers.tsl")), 0o600))
	_, err = agentconfig.Load(p)
	require.ErrorContains(t, err, "unknown key")
}
