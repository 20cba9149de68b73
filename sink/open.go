package sink

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Opener makes a Sink from a URL whose scheme it was registered for.
type Opener func(ctx context.Context, u *url.URL) (Sink, error)

var (
	schemesMu sync.RWMutex
	schemes   = map[string]Opener{}
	schemeRE  = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
)

// RegisterScheme makes Open understand URLs of the given scheme. Sink packages
// call it from init, so a program supports a store by importing its package
// (for its side effect, if it uses nothing else). It panics on a malformed or
// duplicate scheme or a nil opener.
func RegisterScheme(scheme string, open Opener) {
	if !schemeRE.MatchString(scheme) {
		panic(fmt.Sprintf("sink: RegisterScheme: malformed scheme %q", scheme))
	}
	if open == nil {
		panic(fmt.Sprintf("sink: RegisterScheme: nil opener for %q", scheme))
	}
	schemesMu.Lock()
	defer schemesMu.Unlock()
	if _, dup := schemes[scheme]; dup {
		panic(fmt.Sprintf("sink: RegisterScheme called twice for %q", scheme))
	}
	schemes[scheme] = open
}

// Schemes lists the registered URL schemes, sorted.
func Schemes() []string {
	schemesMu.RLock()
	defer schemesMu.RUnlock()
	out := make([]string, 0, len(schemes))
	for s := range schemes {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Open makes a Sink from a URL such as "console://?format=json" or
// "riemann://127.0.0.1:5555", using the opener registered for its scheme.
// "discard://" is always registered: it opens a NewDiscard, for load tests.
func Open(ctx context.Context, rawURL string) (Sink, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("sink: bad URL: %w", err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("sink: URL %q has no scheme (registered: %v)", rawURL, Schemes())
	}
	schemesMu.RLock()
	open, ok := schemes[u.Scheme]
	schemesMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("sink: unknown scheme %q in %q (forgotten import? registered: %v)", u.Scheme, redact(u), Schemes())
	}
	s, err := open(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("sink: open %s: %w", redact(u), err)
	}
	return s, nil
}

func init() {
	RegisterScheme("discard", func(context.Context, *url.URL) (Sink, error) { return NewDiscard(), nil })
}

// redact hides a password in a URL, and the values of query parameters
// that carry secrets (token, password, secret, key), so that they never
// reach a log or an error.
func redact(u *url.URL) string {
	c := *u
	q := c.Query()
	hid := false
	for k := range q {
		switch strings.ToLower(k) {
		case "token", "password", "secret", "key", "access_token":
			q.Set(k, "xxxxx")
			hid = true
		}
	}
	if hid {
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}
