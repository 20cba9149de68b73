package agentconfig

import (
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/internal/yamlfile"
)

func schemaKeys(t reflect.Type, prefix string) []string { return yamlfile.SchemaKeys(t, prefix) }

func docKeys(t *testing.T, path, heading string) []string {
	t.Helper()
	keys, err := yamlfile.DocKeys(path, heading)
	require.NoError(t, err)
	return keys
}

// docs/operating.md's key reference is the schema's: every key of the file
// is in it, and every key in it is in the file.
func TestKeyReferenceMatchesTheSchema(t *testing.T) {
	schema := schemaKeys(reflect.TypeFor[file](), "")
	require.Contains(t, schema, "publishers.tls.server_name")
	require.Contains(t, schema, "drivers[].settings")
	doc := docKeys(t, "../../docs/operating.md", "### Agent keys")
	for _, k := range schema {
		require.True(t, slices.Contains(doc, k), "key %q of the agent's config file is not in docs/operating.md's \"Agent keys\"", k)
	}
	for _, k := range doc {
		require.True(t, slices.Contains(schema, k), "docs/operating.md's \"Agent keys\" lists %q, which the agent's config file does not have", k)
	}
}

// The sample's settings, those commented out too, are keys of the schema
// (so of the key reference above): the sample with every setting
// uncommented still decodes strictly.
func TestSampleKeysAreInTheSchema(t *testing.T) {
	b, err := os.ReadFile("../../examples/agent/agent.yaml")
	require.NoError(t, err)
	uncommented, n := yamlfile.UncommentSettings(b)
	require.Greater(t, n, 5, "the sample has settings commented out")
	_, err = Parse("uncommented.yaml", uncommented)
	require.NoError(t, err, "%s", uncommented)
	_, err = Parse("misspelt.yaml", append(uncommented, []byte("\n# bogus_key: 1\n")...))
	require.NoError(t, err, "prose and other comments are left alone")
	misspelt, _ := yamlfile.UncommentSettings(append(b, []byte("\n# bogus_key: 1\n")...))
	_, err = Parse("misspelt.yaml", misspelt)
	require.ErrorContains(t, err, "bogus_key", "the check fails on a commented key the schema does not have")
}
