package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/web"
)

// request sends GET /api/series with the Authorization header auth (none
// when empty) and returns the status.
func request(t *testing.T, srv *httptest.Server, auth string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/series", nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func bcryptLine(t *testing.T, user, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	require.NoError(t, err)
	return user + ":" + string(h) + "\n"
}

// writeAtomically replaces path the way a rotation should: a new file
// renamed over the old.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// servedAuth starts a Sink with opts behind an httptest server.
func servedAuth(t *testing.T, opts ...web.Option) (*web.Sink, *httptest.Server) {
	t.Helper()
	s, err := web.New(opts...)
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); _ = s.Close(context.Background()) })
	return s, srv
}

// Basic auth with the users of a users file, as htpasswd -B writes it.
func TestUsersFile(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	// bob's line as htpasswd -B writes it: $2y$, the same algorithm as $2a$.
	bob := strings.Replace(bcryptLine(t, "bob", "b0b"), ":$2a$", ":$2y$", 1)
	require.Contains(t, bob, ":$2y$04$")
	require.NoError(t, os.WriteFile(users, []byte("# viewers\n\n"+bcryptLine(t, "alice", "wonder land")+bob), 0o600))
	s, srv := servedAuth(t, web.WithUsersFile(users))
	require.Equal(t, http.StatusServiceUnavailable, request(t, srv, "Basic "+b64("alice:wonder land")), "the users file is read by Start")
	require.NoError(t, s.Start(t.Context()))
	for auth, want := range map[string]int{
		"":                                   http.StatusUnauthorized,
		"Basic " + b64("alice:wonder land"):  http.StatusOK,
		"Basic " + b64("bob:b0b"):            http.StatusOK,
		"Basic " + b64("alice:b0b"):          http.StatusUnauthorized, // another user's password
		"Basic " + b64("bob:wonder land"):    http.StatusUnauthorized,
		"Basic " + b64("carol:b0b"):          http.StatusUnauthorized, // no such user
		"Basic " + b64(":b0b"):               http.StatusUnauthorized,
		"Basic " + b64("alice:wonder lan"):   http.StatusUnauthorized,
		"Basic " + b64("alice:wonder land "): http.StatusUnauthorized,
		"Bearer b0b":                         http.StatusUnauthorized, // a password is no token
	} {
		// Twice: the second answer comes from the verified passwords, and
		// must be the same.
		require.Equal(t, want, request(t, srv, auth), "Authorization: %q", auth)
		require.Equal(t, want, request(t, srv, auth), "Authorization: %q, again", auth)
	}

	// A password changed in the file takes effect without a restart; the
	// old one, verified before, no longer works.
	writeAtomically(t, users, bcryptLine(t, "alice", "new password"))
	require.Equal(t, http.StatusUnauthorized, request(t, srv, "Basic "+b64("alice:wonder land")))
	require.Equal(t, http.StatusUnauthorized, request(t, srv, "Basic "+b64("bob:b0b")), "bob was removed")
	require.Equal(t, http.StatusOK, request(t, srv, "Basic "+b64("alice:new password")))

	// With a token file too, either works.
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("t0ken\n"), 0o600))
	both, srv2 := servedAuth(t, web.WithUsersFile(users), web.WithTokenFile(token))
	require.NoError(t, both.Start(t.Context()))
	require.Equal(t, http.StatusOK, request(t, srv2, "Bearer t0ken"))
	require.Equal(t, http.StatusOK, request(t, srv2, "Basic "+b64("anyone:t0ken")))
	require.Equal(t, http.StatusOK, request(t, srv2, "Basic "+b64("alice:new password")))
	require.Equal(t, http.StatusUnauthorized, request(t, srv2, "Basic "+b64("alice:t0ken2")))

	// Through a URL: users_file= is enough for an address that is not
	// loopback.
	o, err := sink.Open(context.Background(), "web://0.0.0.0:0?users_file="+users)
	require.NoError(t, err)
	require.NoError(t, o.Close(context.Background()))
}

// Start refuses a users file it cannot trust or understand, naming why.
func TestUsersFileRefused(t *testing.T) {
	dir := t.TempDir()
	good := bcryptLine(t, "alice", "pw")
	for name, tc := range map[string]struct {
		content string
		mode    os.FileMode
		want    string
	}{
		"readable by others": {good, 0o644, "chmod 600"},
		"writable by group":  {good, 0o620, "chmod 600"},
		"empty":              {"# nobody\n", 0o600, "no users"},
		"md5":                {"alice:$apr1$abc$0123456789abcdefghijkl\n", 0o600, "want a bcrypt hash"},
		"plain":              {"alice:secret\n", 0o600, "want a bcrypt hash"},
		"no colon":           {"alice\n", 0o600, "line 1: want user:bcrypt-hash"},
		"twice":              {good + good, 0o600, `line 2: user "alice" twice`},
		"broken bcrypt":      {"alice:$2y$05$short\n", 0o600, "alice"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o600))
			require.NoError(t, os.Chmod(path, tc.mode))
			s, err := web.New(web.WithUsersFile(path))
			require.NoError(t, err, "New reads nothing")
			err = s.Start(t.Context())
			require.ErrorContains(t, err, tc.want)
			if tc.mode != 0o600 {
				require.ErrorIs(t, err, web.ErrCredentialFileMode)
			}
			if _, hash, ok := strings.Cut(strings.TrimSpace(tc.content), ":"); ok {
				require.NotContains(t, err.Error(), hash, "the error shows no hash")
			}
			t.Log(err)
		})
	}
	// A token file is checked the same way.
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("t0ken"), 0o644))
	s, err := web.New(web.WithTokenFile(token))
	require.NoError(t, err)
	require.ErrorIs(t, s.Start(t.Context()), web.ErrCredentialFileMode)
	dirAsFile, err := web.New(web.WithTokenFile(dir))
	require.NoError(t, err)
	require.ErrorContains(t, dirAsFile.Start(t.Context()), "not a regular file")
}

// A token rotated in its file is taken without a restart: by a rename over
// it, by a rewrite in place, and a file that becomes unreadable or empty
// refuses every request until it is fixed.
func TestTokenFileRotation(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("first-token\n"), 0o600))
	s, srv := servedAuth(t, web.WithTokenFile(token))
	require.NoError(t, s.Start(t.Context()))
	require.Equal(t, http.StatusOK, request(t, srv, "Bearer first-token"))

	writeAtomically(t, token, "second-token\n")
	require.Equal(t, http.StatusUnauthorized, request(t, srv, "Bearer first-token"))
	require.Equal(t, http.StatusOK, request(t, srv, "Bearer second-token"))

	// In place, the same size, right after the last read: a modification
	// time that may not have moved does not hide the change.
	require.NoError(t, os.WriteFile(token, []byte("third--token\n"), 0o600))
	require.Equal(t, http.StatusUnauthorized, request(t, srv, "Bearer second-token"))
	require.Equal(t, http.StatusOK, request(t, srv, "Bearer third--token"))

	// Once the file is old, its modification time is trusted; a rewrite
	// moves it.
	old := time.Now().Add(-time.Minute)
	require.NoError(t, os.Chtimes(token, old, old))
	require.Equal(t, http.StatusOK, request(t, srv, "Bearer third--token"))
	require.NoError(t, os.WriteFile(token, []byte("fourth-token\n"), 0o600))
	require.Equal(t, http.StatusOK, request(t, srv, "Bearer fourth-token"))

	// Gone, empty or opened to others: nothing is accepted, not even the
	// last token; fixed: accepted again.
	require.NoError(t, os.Remove(token))
	require.Equal(t, http.StatusServiceUnavailable, request(t, srv, "Bearer fourth-token"))
	require.NoError(t, os.WriteFile(token, []byte("\n"), 0o600))
	require.Equal(t, http.StatusServiceUnavailable, request(t, srv, "Bearer fourth-token"))
	require.NoError(t, os.WriteFile(token, []byte("fifth-token"), 0o600))
	require.NoError(t, os.Chmod(token, 0o644))
	require.Equal(t, http.StatusServiceUnavailable, request(t, srv, "Bearer fifth-token"))
	require.NoError(t, os.Chmod(token, 0o600))
	require.Equal(t, http.StatusOK, request(t, srv, "Bearer fifth-token"))
	require.Equal(t, http.StatusUnauthorized, request(t, srv, "Bearer fourth-token"))
}

// A stream opened with a token ends once the token is rotated out of its
// file: the next event after a second finds the credentials gone.
func TestTokenRotationEndsStreams(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer http.DefaultClient.CloseIdleConnections()
	token := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(token, []byte("old-token"), 0o600))
	s, err := web.New(web.WithAddr("127.0.0.1:0"), web.WithTokenFile(token))
	require.NoError(t, err)
	require.NoError(t, s.Start(t.Context()))
	defer s.Close(context.Background())
	ctx := context.Background()

	req, err := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer old-token")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := readEvents(resp.Body)
	require.NoError(t, s.Write(ctx, []meter.Measurement{gauge("cpu.util", "h", "cpu0", 1, t0)}))
	require.Equal(t, "series", next(t, events).name)
	require.Equal(t, "points", next(t, events).name)

	writeAtomically(t, token, "new-token")
	time.Sleep(1100 * time.Millisecond)
	require.NoError(t, s.Write(ctx, []meter.Measurement{gauge("cpu.util", "h", "cpu0", 2, t0.Add(time.Second))}))
	select {
	case ev, ok := <-events:
		require.False(t, ok, "the stream goes on after the rotation: %+v", ev)
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end after the rotation")
	}
}
