package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport/seal"
)

func ctlRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(args, &out, &errOut)
	return out.String(), err
}

func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	agentKey := filepath.Join(dir, "agent.key")

	out, err := ctlRun(t, "-keys", keys, "tenant", "create", "acme")
	require.NoError(t, err)
	require.Contains(t, out, "created tenant acme with key k1")
	fi, err := os.Stat(keys)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = ctlRun(t, "-keys", keys, "tenant", "create", "acme")
	require.ErrorContains(t, err, "exists")
	_, err = ctlRun(t, "-keys", keys, "tenant", "create", "globex")
	require.NoError(t, err)

	kf, err := seal.LoadKeyFile(keys)
	require.NoError(t, err)
	secret := base64.StdEncoding.EncodeToString(kf.Tenants["acme"].Keys[0].Secret)

	out, err = ctlRun(t, "-keys", keys, "tenant", "list")
	require.NoError(t, err)
	require.Contains(t, out, "acme")
	require.Contains(t, out, "globex")
	require.NotContains(t, out, secret, "list never prints keys")

	out, err = ctlRun(t, "-keys", keys, "key", "rotate", "-tenant", "acme")
	require.NoError(t, err)
	require.Contains(t, out, "added key k2")
	require.NotContains(t, out, secret)
	_, err = ctlRun(t, "-keys", keys, "key", "rotate", "-tenant", "acme")
	require.ErrorContains(t, err, "revoke the old one first")

	// Export: to a file (0600) with the newest key, or to stdout when asked.
	_, err = ctlRun(t, "-keys", keys, "key", "export", "-tenant", "acme")
	require.ErrorContains(t, err, "-out")
	out, err = ctlRun(t, "-keys", keys, "key", "export", "-tenant", "acme", "-out", agentKey)
	require.NoError(t, err)
	require.Contains(t, out, "wrote key k2")
	s, err := seal.SealerFor(agentKey, "acme")
	require.NoError(t, err)
	require.Equal(t, "k2", s.KeyID())
	out, err = ctlRun(t, "-keys", keys, "key", "export", "-tenant", "acme", "-id", "k1", "-out", "-")
	require.NoError(t, err)
	require.Contains(t, out, secret)

	out, err = ctlRun(t, "-keys", keys, "key", "revoke", "-tenant", "acme", "-id", "k1")
	require.NoError(t, err)
	require.Contains(t, out, "keys left: k2")
	_, err = ctlRun(t, "-keys", keys, "key", "revoke", "-tenant", "acme", "-id", "k1")
	require.ErrorContains(t, err, `no key "k1"`)
	out, err = ctlRun(t, "-keys", keys, "key", "rotate", "-tenant", "acme")
	require.NoError(t, err)
	require.Contains(t, out, "added key k3")

	_, err = ctlRun(t, "-keys", keys, "tenant", "delete", "globex")
	require.NoError(t, err)
	out, err = ctlRun(t, "-keys", keys, "tenant", "list")
	require.NoError(t, err)
	require.NotContains(t, out, "globex")
	require.Equal(t, 3, strings.Count(out, "\n"))
}

func TestRefusesOpenFile(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.json")
	_, err := ctlRun(t, "-keys", keys, "tenant", "create", "acme")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(keys, 0o644))
	_, err = ctlRun(t, "-keys", keys, "tenant", "list")
	require.ErrorIs(t, err, seal.ErrKeyFileMode)
	require.ErrorContains(t, err, "mode 0644")
	require.ErrorContains(t, err, "chmod 600")
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"tenant"}, {"tenant", "frob"}, {"key", "rotate"}, {"tenant", "create"}} {
		_, err := ctlRun(t, args...)
		require.ErrorIs(t, err, errUsage, "%q", args)
	}
}
