package prometheus

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func secretFile(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

// A bearer token or a basic-auth password can live in a file of its own,
// mode 0600 as tenant key files are; it is sent, and never shown in errors.
func TestSecretFiles(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, basic := r.BasicAuth()
		if r.Header.Get("Authorization") != "Bearer t0ken-from-file" && !(basic && user == "meter" && pw == "pa55-from-file") {
			http.Error(w, "no entry", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "up 1\n")
	}))
	defer srv.Close()

	for name, cfg := range map[string]map[string]any{
		"bearer": {"url": srv.URL, "bearer_token_file": secretFile(t, "t0ken-from-file\n", 0o600)},
		"basic":  {"url": srv.URL, "basic_auth": map[string]any{"username": "meter", "password_file": secretFile(t, "pa55-from-file\n", 0o400)}},
	} {
		ms, err := collect(t, open(t, cfg), 5*time.Second)
		require.NoError(t, err, name)
		require.Len(t, ms, 1, name)
	}
	d := open(t, map[string]any{"url": srv.URL, "bearer_token_file": secretFile(t, "wrong-t0ken\n", 0o600)})
	_, err := collect(t, d, 5*time.Second)
	require.ErrorContains(t, err, "401 Unauthorized")
	require.NotContains(t, err.Error(), "wrong-t0ken")

	readable := secretFile(t, "t0ken-from-file\n", 0o644)
	for name, tc := range map[string]struct {
		cfg  map[string]any
		want string
	}{
		"mode":      {map[string]any{"url": srv.URL, "bearer_token_file": readable}, "bearer_token_file: secret file permissions too open: " + readable + " has mode 0644"},
		"both":      {map[string]any{"url": srv.URL, "bearer_token_file": readable, "basic_auth": map[string]any{"username": "u", "password_file": readable}}, "bearer_token_file and basic_auth both given"},
		"header":    {map[string]any{"url": srv.URL, "bearer_token_file": readable, "headers": map[string]string{"authorization": "Bearer x"}}, "an Authorization header and bearer_token_file or basic_auth both given"},
		"no user":   {map[string]any{"url": srv.URL, "basic_auth": map[string]any{"password_file": readable}}, "basic_auth: needs a username"},
		"basic mod": {map[string]any{"url": srv.URL, "basic_auth": map[string]any{"username": "u", "password_file": readable}}, "basic_auth: password_file: secret file permissions too open"},
	} {
		_, err := New(config(t, tc.cfg))
		require.ErrorContains(t, err, tc.want, name)
	}
}
