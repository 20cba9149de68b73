package snmp

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func secretFile(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

// The community and the v3 passwords can live in files of their own, mode
// 0600 as tenant key files are.
func TestSecretFiles(t *testing.T) {
	objects := []map[string]any{{"oid": "1.3.6.1.2.1.1.3.0", "name": "uptime"}}
	d := open(t, map[string]any{"target": "127.0.0.1", "community_file": secretFile(t, "private\n", 0o600), "objects": objects})
	require.Equal(t, "private", d.cfg.Community)
	d = open(t, map[string]any{"target": "127.0.0.1", "objects": objects})
	require.Equal(t, DefaultCommunity, d.cfg.Community)

	d = open(t, map[string]any{"target": "127.0.0.1", "version": "3", "user": "meterkit",
		"auth_password_file": secretFile(t, "authpass123\n", 0o400), "priv_password_file": secretFile(t, "privpass123", 0o600),
		"objects": objects})
	require.Equal(t, "authpass123", d.cfg.AuthPassword)
	require.Equal(t, "privpass123", d.cfg.PrivPassword)

	open := secretFile(t, "authpass123\n", 0o644)
	_, err := New(config(t, map[string]any{"target": "127.0.0.1", "version": "3", "user": "meterkit",
		"auth_password_file": open, "objects": objects}))
	require.ErrorContains(t, err, "snmp: config: auth_password_file: ")
	require.ErrorContains(t, err, "mode 0644")
	require.ErrorContains(t, err, "chmod 600 "+open)

	_, err = New(config(t, map[string]any{"target": "127.0.0.1", "community": "x",
		"community_file": secretFile(t, "y", 0o600), "objects": objects}))
	require.ErrorContains(t, err, "community and community_file both given")
}
