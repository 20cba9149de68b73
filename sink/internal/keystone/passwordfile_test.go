package keystone

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The password can live in a file of its own (mode 0600), replacing the
// one clouds.yaml gives or leaves out; it is redacted like any secret.
func TestPasswordFile(t *testing.T) {
	t.Setenv("OS_CLOUD", "")
	dir := t.TempDir()
	clouds := filepath.Join(dir, "clouds.yaml")
	require.NoError(t, os.WriteFile(clouds, []byte(`clouds:
  test:
    auth: {auth_url: "http://ks:5000/v3", username: meter, project_name: demo, user_domain_name: Default, project_domain_name: Default}
    region_name: RegionOne
`), 0o644))
	pw := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret-from-file\n"), 0o600))
	s, err := New(Config{Cloud: "test", CloudsFile: clouds, PasswordFile: pw})
	require.NoError(t, err)
	require.Equal(t, "s3cret-from-file", s.auth.Password)
	require.Equal(t, []string{"s3cret-from-file"}, s.secrets)

	require.NoError(t, os.Chmod(pw, 0o644))
	_, err = New(Config{Cloud: "test", CloudsFile: clouds, PasswordFile: pw})
	require.ErrorContains(t, err, "keystone: password_file: secret file permissions too open")

	_, err = New(Config{PasswordFile: pw})
	require.ErrorContains(t, err, "password_file goes with a cloud of clouds.yaml")
}
