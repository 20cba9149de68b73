package web

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// maxCredentialFile bounds the size of a token or users file.
const maxCredentialFile = 1 << 20

// ErrCredentialFileMode is wrapped by the error for a token or users file
// that others than its owner may read or write.
var ErrCredentialFileMode = errors.New("web: credential file permissions too open")

// readCredentialFile reads a token or users file. Like the key files of
// transport/seal, it must be a regular file that only its owner may read
// or write; the checks are made on the file opened, not on the path.
// what names the file in errors ("token file").
func readCredentialFile(what, path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("web: %s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("web: %s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("web: %s %s is not a regular file (%v)", what, path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, nil, fmt.Errorf("%w: %s %s has mode %04o, which lets group or others read or write it; run: chmod 600 %s",
			ErrCredentialFileMode, what, path, perm, path)
	}
	if fi.Size() > maxCredentialFile {
		return nil, nil, fmt.Errorf("web: %s %s: %d bytes, over the limit of %d", what, path, fi.Size(), maxCredentialFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialFile+1))
	if err != nil {
		return nil, nil, fmt.Errorf("web: %s: %w", what, err)
	}
	return b, fi, nil
}

// watched is the content of a credential file, parsed, and read again when
// the file changes (its modification time, size or inode), so that a token
// or a password rotated in the file takes effect with the next request,
// without a restart. A file modified less than settle before it was read is
// read again on every request until it is older: a file systems' clock
// ticks in milliseconds, so a rewrite of the same size within one tick
// leaves the same modification time. A file that became unreadable or
// invalid refuses every request until it is fixed: no credential outlives
// its file.
type watched[T any] struct {
	what  string // "token file", "users file"
	path  string
	parse func([]byte) (T, error)

	mu      sync.Mutex
	loaded  bool
	settled bool // the file was older than settle when read
	fi      os.FileInfo
	raw     []byte // the content val was parsed from
	val     T
}

// settle is how old a credential file must be for its modification time to
// be trusted to change with its content.
const settle = 2 * time.Second

// load reads the file if it changed since it was last read, and returns
// what it holds.
func (w *watched[T]) load() (T, error) {
	var zero T
	fi, err := os.Stat(w.path)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.loaded = false
		return zero, fmt.Errorf("web: %s: %w", w.what, err)
	}
	if w.loaded && w.settled && fi.ModTime().Equal(w.fi.ModTime()) && fi.Size() == w.fi.Size() && os.SameFile(fi, w.fi) {
		return w.val, nil
	}
	w.loaded = false
	now := time.Now()
	b, fi, err := readCredentialFile(w.what, w.path)
	if err != nil {
		return zero, err
	}
	v := w.val
	if w.raw == nil || !bytes.Equal(b, w.raw) { // the same content keeps its value (and the users' verified passwords)
		if v, err = w.parse(b); err != nil {
			return zero, fmt.Errorf("web: %s %s: %w", w.what, w.path, err)
		}
	}
	w.loaded, w.fi, w.raw, w.val = true, fi, b, v
	w.settled = now.Sub(fi.ModTime()) > settle
	return v, nil
}

func parseToken(b []byte) (string, error) {
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", errors.New("empty token")
	}
	return tok, nil
}

// users is the content of a users file: user names and their bcrypt
// hashes, and the passwords verified since the file was read (as keyed
// digests), so that bcrypt, slow by design, runs once per user and
// password rather than once per request.
type users struct {
	hash map[string][]byte
	key  [32]byte // keys the digests of verified passwords
	// dummy is compared against when the user is unknown, so that an
	// unknown user takes as long as a wrong password: a hash of the
	// highest cost of the file, made on first use (bcrypt is slow by
	// design).
	dummy func() []byte

	mu       sync.Mutex
	verified map[string][sha256.Size]byte
}

// parseUsers reads lines "user:bcrypt-hash", as `htpasswd -B` writes them;
// blank lines and lines starting with # are skipped.
func parseUsers(b []byte) (*users, error) {
	u := &users{hash: make(map[string][]byte), verified: make(map[string][sha256.Size]byte)}
	if _, err := rand.Read(u.key[:]); err != nil {
		return nil, err
	}
	cost := bcrypt.MinCost
	u.dummy = sync.OnceValue(func() []byte {
		h, _ := bcrypt.GenerateFromPassword(u.key[:16], cost)
		return h
	})
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxCredentialFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok || name == "":
			return nil, fmt.Errorf("line %d: want user:bcrypt-hash", n)
		case !strings.HasPrefix(hash, "$2"):
			return nil, fmt.Errorf("line %d: user %q: want a bcrypt hash ($2y$…, htpasswd -B); other schemes are refused", n, name)
		case u.hash[name] != nil:
			return nil, fmt.Errorf("line %d: user %q twice", n, name)
		}
		c, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return nil, fmt.Errorf("line %d: user %q: %w", n, name, err)
		}
		cost = max(cost, c)
		u.hash[name] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(u.hash) == 0 {
		return nil, errors.New("no users")
	}
	return u, nil
}

// check reports whether password is the password of user.
func (u *users) check(user, password string) bool {
	d := u.digest(user, password)
	u.mu.Lock()
	seen, ok := u.verified[user]
	u.mu.Unlock()
	if ok && subtle.ConstantTimeCompare(seen[:], d[:]) == 1 {
		return true
	}
	hash, known := u.hash[user]
	if !known {
		hash = u.dummy()
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !known {
		return false
	}
	u.mu.Lock()
	u.verified[user] = d // at most one per user of the file
	u.mu.Unlock()
	return true
}

func (u *users) digest(user, password string) [sha256.Size]byte {
	h := sha256.New()
	h.Write(u.key[:])
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// auth checks a request's credentials: a bearer token (from WithToken or a
// token file), or basic auth, with the token as password (any user name)
// or a user and password of the users file.
type auth struct {
	token     string // WithToken
	tokenFile *watched[string]
	usersFile *watched[*users]

	mu      sync.Mutex
	started bool // Start read the files once: until then every request is refused
}

func newAuth(c *config) *auth {
	if c.token == "" && c.tokenFile == "" && c.usersFile == "" {
		return nil
	}
	a := &auth{token: c.token, started: c.tokenFile == "" && c.usersFile == ""}
	if c.tokenFile != "" {
		a.tokenFile = &watched[string]{what: "token file", path: c.tokenFile, parse: parseToken}
	}
	if c.usersFile != "" {
		a.usersFile = &watched[*users]{what: "users file", path: c.usersFile, parse: parseUsers}
	}
	return a
}

// start reads the files, so that Start fails on a missing or invalid one.
func (a *auth) start() error {
	if a.tokenFile != nil {
		if _, err := a.tokenFile.load(); err != nil {
			return err
		}
	}
	if a.usersFile != nil {
		if _, err := a.usersFile.load(); err != nil {
			return err
		}
	}
	a.mu.Lock()
	a.started = true
	a.mu.Unlock()
	return nil
}

// errNotStarted is what a request gets before Start read the files.
var errNotStarted = errors.New("web: credentials not loaded yet (Start reads the token and users files)")

// check reports whether r carries valid credentials; an error means that
// a credential file cannot be read (every request is refused then).
func (a *auth) check(r *http.Request) (bool, error) {
	a.mu.Lock()
	started := a.started
	a.mu.Unlock()
	if !started {
		return false, errNotStarted
	}
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok {
		return false, nil
	}
	var user, secret string
	basic := false
	switch strings.ToLower(scheme) {
	case "bearer":
		secret = strings.TrimSpace(cred)
	case "basic":
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return false, nil
		}
		if user, secret, ok = strings.Cut(string(b), ":"); !ok {
			return false, nil
		}
		basic = true
	default:
		return false, nil
	}
	var errs []error
	if a.token != "" && equal(secret, a.token) {
		return true, nil
	}
	if a.tokenFile != nil {
		tok, err := a.tokenFile.load()
		if err == nil && equal(secret, tok) {
			return true, nil
		}
		errs = append(errs, err)
	}
	if a.usersFile != nil && basic {
		u, err := a.usersFile.load()
		if err == nil && u.check(user, secret) {
			return true, nil
		}
		errs = append(errs, err)
	}
	return false, errors.Join(errs...)
}

// equal compares two secrets in a time that depends on neither.
func equal(a, b string) bool {
	da, db := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(da[:], db[:]) == 1
}
