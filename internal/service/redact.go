package service

import (
	"net/url"
	"strings"
)

// Redacted replaces a secret in what -print-config shows.
const Redacted = "REDACTED"

// secretWords are the parts of a setting's name that make its value a
// secret.
var secretWords = []string{"password", "passwd", "secret", "token", "community", "passphrase", "authorization", "credential"}

// IsSecretKey reports whether a setting named key holds a secret itself:
// its name says password, secret, token, community, passphrase,
// authorization or credential, and it does not name a file or an
// environment variable holding one (*_file, *_env).
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "_file") || strings.HasSuffix(k, "_env") {
		return false
	}
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// RedactURL returns s with the password of a URL in it replaced by
// Redacted ("amqp://guest:REDACTED@host/"), and the value of each query
// parameter whose name IsSecretKey too; anything else as it is.
func RedactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	changed := false
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), Redacted)
		changed = true
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if IsSecretKey(k) {
				q.Set(k, Redacted)
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if !changed {
		return s
	}
	out, _ := url.PathUnescape(u.String()) // keep REDACTED and paths readable
	return out
}

// Redact returns a copy of v, a value as encoding/json or a YAML decoder
// makes it (maps with string keys, slices, strings, numbers), with the
// value of every key that IsSecretKey replaced by Redacted and every string
// passed through RedactURL.
func Redact(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if IsSecretKey(k) && e != nil {
				if m, ok := e.(map[string]any); ok { // headers: {Authorization: ...}
					out[k] = Redact(m)
					continue
				}
				out[k] = Redacted
				continue
			}
			out[k] = Redact(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = Redact(e)
		}
		return out
	case string:
		return RedactURL(v)
	}
	return v
}
