package riemann

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/meterkit/meter/internal/tlsfiles"
	"github.com/meterkit/meter/sink"
)

func init() {
	sink.RegisterScheme("riemann", open)
	sink.RegisterScheme("riemann+tls", open)
	sink.RegisterScheme("riemann+udp", open)
}

// Query parameters each scheme takes.
var (
	commonParams = []string{"ttl", "tag", "host", "state", "batch", "timeout", "dial_timeout", "receipts"}
	tlsParams    = []string{"ca", "cert", "key", "server_name"}
)

// open is the sink.Opener for riemann://, riemann+tls:// and riemann+udp://.
func open(_ context.Context, u *url.URL) (sink.Sink, error) {
	opts, err := urlOptions(u)
	if err != nil {
		return nil, err
	}
	return New(u.Host, opts...)
}

// urlOptions turns the scheme and query parameters of a riemann://,
// riemann+tls:// or riemann+udp:// URL into options for New (see the package
// documentation for the parameters). Unknown parameters are errors, so that
// a typo does not go unnoticed.
func urlOptions(u *url.URL) ([]Option, error) {
	allowed := commonParams
	var opts []Option
	switch u.Scheme {
	case "riemann":
	case "riemann+udp":
		opts = append(opts, WithUDP())
	case "riemann+tls":
		allowed = append(slices.Clone(commonParams), tlsParams...)
	default:
		return nil, fmt.Errorf("riemann: unknown scheme %q (want riemann, riemann+tls or riemann+udp)", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("riemann: URL has no host:port (want %s://host:5555)", u.Scheme)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("riemann: URL takes no user or path (want %s://host:5555?ttl=60)", u.Scheme)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("riemann: bad query: %w", err)
	}
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("riemann: unknown parameter %q for %s:// (known: %v)", k, u.Scheme, allowed)
		}
		if k != "tag" && len(vs) > 1 {
			return nil, fmt.Errorf("riemann: parameter %q given %d times", k, len(vs))
		}
	}
	if v, ok := single(q, "ttl"); ok {
		ttl, err := parseTTL(v)
		if err != nil {
			return nil, fmt.Errorf("riemann: parameter ttl: %w", err)
		}
		d := time.Duration(float64(ttl) * float64(time.Second))
		if ttl == 0 { // ttl=0 leaves the field out, as it always did
			d = NoTTL
		}
		opts = append(opts, WithTTL(d))
	}
	if tags, ok := q["tag"]; ok {
		opts = append(opts, WithTags(tags...))
	}
	if v, ok := single(q, "host"); ok {
		opts = append(opts, WithDefaultHost(v))
	}
	if v, ok := single(q, "state"); ok {
		opts = append(opts, WithState(v))
	}
	if v, ok := single(q, "batch"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("riemann: parameter batch: %q is not a whole number >= 1", v)
		}
		opts = append(opts, WithBatchSize(n))
	}
	for _, p := range []struct {
		name string
		opt  func(time.Duration) Option
	}{{"timeout", WithTimeout}, {"dial_timeout", WithDialTimeout}, {"receipts", WithReceipts}} {
		if v, ok := single(q, p.name); ok {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("riemann: parameter %s: %q is not a positive duration (want 5s, 500ms)", p.name, v)
			}
			opts = append(opts, p.opt(d))
		}
	}
	if u.Scheme == "riemann+tls" {
		c, err := tlsConfig(q)
		if err != nil {
			return nil, err
		}
		opts = append(opts, WithTLS(c))
	}
	return opts, nil
}

func single(q url.Values, k string) (string, bool) {
	vs, ok := q[k]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// tlsConfig builds a client TLS configuration from ca=, cert=, key= and
// server_name= (all optional; cert and key go together).
func tlsConfig(q url.Values) (*tls.Config, error) {
	var f tlsfiles.Client
	f.ServerName, _ = single(q, "server_name")
	f.CA, _ = single(q, "ca")
	f.Cert, _ = single(q, "cert")
	f.Key, _ = single(q, "key")
	c, err := f.Config()
	if err != nil {
		return nil, fmt.Errorf("riemann: parameter %w", err)
	}
	return c, nil
}
