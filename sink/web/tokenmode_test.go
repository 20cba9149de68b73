package web_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/sink/web"
)

// A token file others may read is refused when the sink starts, as tenant
// key files are; the error says how to fix it.
func TestTokenFileMode(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600))
	require.NoError(t, os.Chmod(tokenFile, 0o644))
	s, err := web.New(web.WithTokenFile(tokenFile))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(t.Context()) })
	err = s.Start(t.Context())
	require.ErrorIs(t, err, web.ErrCredentialFileMode)
	require.ErrorContains(t, err, "token file "+tokenFile)
	require.ErrorContains(t, err, "mode 0644")
	require.ErrorContains(t, err, "chmod 600 "+tokenFile)

	require.NoError(t, os.Chmod(tokenFile, 0o600))
	require.NoError(t, s.Start(t.Context()))
}
