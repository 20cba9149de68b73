package notification

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A credentials file others may read is refused, as tenant key files are.
func TestCredentialsFileMode(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "creds")
	require.NoError(t, os.WriteFile(creds, []byte("meter:s3cret\n"), 0o600))
	require.NoError(t, os.Chmod(creds, 0o640))
	_, err := NewDriver(Config{CredentialsFile: creds}, nil)
	require.ErrorContains(t, err, "notification: credentials_file: ")
	require.ErrorContains(t, err, "mode 0640")
	require.NotContains(t, err.Error(), "s3cret")
}
