package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(p, []byte("s3cret\n"), 0o600))
	s, err := ReadSecret(p)
	require.NoError(t, err)
	require.Equal(t, "s3cret", s)

	require.NoError(t, os.Chmod(p, 0o640))
	_, err = ReadSecret(p)
	require.True(t, errors.Is(err, ErrSecretMode), "%v", err)
	require.ErrorContains(t, err, "mode 0640")
	require.ErrorContains(t, err, "chmod 600 "+p)

	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	_, err = ReadSecret(empty)
	require.ErrorContains(t, err, "is empty")

	_, err = ReadSecret(dir)
	require.ErrorContains(t, err, "not a regular file")
	_, err = ReadSecret(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)

	// CheckSecretFile: the same checks, nothing read.
	require.ErrorIs(t, CheckSecretFile(p), ErrSecretMode)
	require.NoError(t, os.Chmod(p, 0o600))
	require.NoError(t, CheckSecretFile(p))
	require.NoError(t, CheckSecretFile(empty), "not read: an empty file is the part's to refuse")
	require.ErrorContains(t, CheckSecretFile(dir), "not a regular file")
	require.ErrorIs(t, CheckSecretFile(filepath.Join(dir, "missing")), os.ErrNotExist)
}

func TestRedact(t *testing.T) {
	var v any
	require.NoError(t, json.Unmarshal([]byte(`{
		"url": "amqp://guest:guest@rabbit:5672/",
		"plain": "riemann://127.0.0.1:5555?receipts=10m",
		"community": "public",
		"auth_password": "a",
		"password_file": "/etc/pw",
		"secret_env": "TELEMETRY_SECRET",
		"headers": {"Authorization": "Bearer x", "Accept": "text/plain"},
		"list": ["web://h:1?token=abc", 3]}`), &v))
	got, err := json.Marshal(Redact(v))
	require.NoError(t, err)
	require.JSONEq(t, `{
		"url": "amqp://guest:REDACTED@rabbit:5672/",
		"plain": "riemann://127.0.0.1:5555?receipts=10m",
		"community": "REDACTED",
		"auth_password": "REDACTED",
		"password_file": "/etc/pw",
		"secret_env": "TELEMETRY_SECRET",
		"headers": {"Authorization": "REDACTED", "Accept": "text/plain"},
		"list": ["web://h:1?token=REDACTED", 3]}`, string(got))
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := Logger(&buf, "warn", "json")
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m))
	require.Equal(t, "shown", m["msg"])
	require.Equal(t, "WARN", m["level"])

	_, err := ParseLevel("loud")
	require.ErrorContains(t, err, `unknown log level "loud" (want debug, info, warn, error)`)
	require.ErrorContains(t, CheckFormat("xml"), `unknown log format "xml"`)
	require.NoError(t, CheckFormat(""))
}

func TestVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/meterkit/meter", Version: "v0.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "05041b0c9a1e4b7d"}, {Key: "vcs.time", Value: "2026-11-30T14:01:36Z"}, {Key: "vcs.modified", Value: "true"}}}
	require.Equal(t, "meter-agent github.com/meterkit/meter v0.4.0 (rev 05041b0c9a1e+dirty, 2026-11-30T14:01:36Z) go1.26.0", version("meter-agent", bi))
	require.Equal(t, "x m (devel) go1.26.0", version("x", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "m"}}))
	require.Contains(t, Version("x"), "x ")
}
