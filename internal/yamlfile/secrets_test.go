package yamlfile

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
)

func TestSecretsDigestFollowsTheFilesContents(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("one"), 0o600))
	cfg := meter.ConfigFromJSON([]byte(`{"url":"http://x","basic_auth":{"username":"u","password_file":"` + pw + `"},"list":[{"key_file":"` + pw + `"}]}`))
	d1 := SecretsDigest(cfg)
	require.NotEmpty(t, d1)
	require.Equal(t, d1, SecretsDigest(cfg), "the same files, the same digest")
	require.Empty(t, SecretsDigest(meter.ConfigFromJSON([]byte(`{"url":"http://x","timeout":"1s"}`))), "no file named")
	require.Empty(t, SecretsDigest(meter.Config{}))

	require.NoError(t, os.WriteFile(pw, []byte("two"), 0o600))
	d2 := SecretsDigest(cfg)
	require.NotEqual(t, d1, d2, "a rotated secret")
	require.NoError(t, os.Chmod(pw, 0o644))
	require.NotEqual(t, d2, SecretsDigest(cfg), "a mode made too open")
	require.NoError(t, os.Remove(pw))
	require.NotEqual(t, d2, SecretsDigest(cfg), "a file gone")

	tok := filepath.Join(dir, "tok")
	require.NoError(t, os.WriteFile(tok, []byte("a"), 0o600))
	raw := "web://127.0.0.1:1?token_file=" + url.QueryEscape(tok) + "&password_file=" + url.QueryEscape(tok)
	u1, skipped1 := URLSecretsDigest(raw, nil), URLSecretsDigest(raw, []string{"token_file", "password_file"})
	require.NotEmpty(t, u1)
	require.Empty(t, skipped1)
	require.NoError(t, os.WriteFile(tok, []byte("b"), 0o600))
	require.NotEqual(t, u1, URLSecretsDigest(raw, nil))
	require.Empty(t, URLSecretsDigest("console://", nil))
}
