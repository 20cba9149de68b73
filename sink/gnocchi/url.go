package gnocchi

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/meterkit/meter/internal/tlsfiles"
	"github.com/meterkit/meter/sink"
)

func init() {
	sink.RegisterScheme("gnocchi", open)
	sink.RegisterScheme("gnocchi+http", open)
	sink.RegisterScheme("gnocchi+https", open)
}

var params = []string{"cloud", "clouds_file", "password_file", "region", "interface", "resource_type", "archive_policy",
	"resource_attrs", "resource_types", "timeout", "auth", "user", "ca"}

// open is the sink.Opener for gnocchi://, gnocchi+http:// and
// gnocchi+https://.
func open(_ context.Context, u *url.URL) (sink.Sink, error) {
	opts, err := urlOptions(u)
	if err != nil {
		return nil, err
	}
	return New(opts...)
}

// urlOptions turns a gnocchi URL into options for New. gnocchi:// has no
// host: Gnocchi comes from the catalogue. gnocchi+http(s)://host:port is
// Gnocchi's own address, with Keystone auth (auth=keystone, the default)
// or auth=basic.
func urlOptions(u *url.URL) ([]Option, error) {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("gnocchi: bad query: %w", err)
	}
	for k, vs := range q {
		if !slices.Contains(params, k) {
			return nil, fmt.Errorf("gnocchi: unknown parameter %q (known: %v)", k, params)
		}
		if len(vs) > 1 {
			return nil, fmt.Errorf("gnocchi: parameter %q given %d times", k, len(vs))
		}
	}
	if u.User != nil {
		return nil, fmt.Errorf("gnocchi: %s:// URL takes no user: credentials come from clouds.yaml or OS_* variables (basic auth: user=)", u.Scheme)
	}
	var opts []Option
	switch u.Scheme {
	case "gnocchi":
		if u.Host != "" {
			return nil, fmt.Errorf("gnocchi: gnocchi:// finds Gnocchi in the catalogue and takes no host (for a fixed address: gnocchi+http://%s)", u.Host)
		}
	case "gnocchi+http", "gnocchi+https":
		if u.Host == "" {
			return nil, fmt.Errorf("gnocchi: %s:// URL has no host (want %s://host:8041)", u.Scheme, u.Scheme)
		}
		opts = append(opts, WithEndpoint((&url.URL{Scheme: strings.TrimPrefix(u.Scheme, "gnocchi+"), Host: u.Host, Path: u.Path}).String()))
	default:
		return nil, fmt.Errorf("gnocchi: unknown scheme %q", u.Scheme)
	}
	switch auth := q.Get("auth"); auth {
	case "", "keystone":
		if q.Has("user") {
			return nil, fmt.Errorf("gnocchi: parameter user goes with auth=basic")
		}
	case "basic":
		if u.Scheme == "gnocchi" {
			return nil, fmt.Errorf("gnocchi: auth=basic needs Gnocchi's address: gnocchi+http://host:8041?auth=basic")
		}
		opts = append(opts, WithBasicAuth(q.Get("user")))
	default:
		return nil, fmt.Errorf("gnocchi: parameter auth: %q is not keystone or basic", auth)
	}
	for k, set := range map[string]func(string) Option{
		"cloud": WithCloud, "clouds_file": WithCloudsFile, "password_file": WithPasswordFile, "region": WithRegion, "interface": WithInterface,
		"resource_type": WithResourceType, "archive_policy": WithArchivePolicy,
	} {
		if q.Has(k) {
			opts = append(opts, set(q.Get(k)))
		}
	}
	if q.Has("resource_attrs") {
		opts = append(opts, WithResourceAttributes(strings.Split(q.Get("resource_attrs"), ",")...))
	}
	switch v := q.Get("resource_types"); v {
	case "", "default":
	case "none":
		opts = append(opts, WithResourceTypes())
	default:
		return nil, fmt.Errorf("gnocchi: parameter resource_types: %q is not default or none", v)
	}
	if q.Has("timeout") {
		d, err := time.ParseDuration(q.Get("timeout"))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("gnocchi: parameter timeout: %q is not a positive duration (want 5s, 500ms)", q.Get("timeout"))
		}
		opts = append(opts, WithTimeout(d))
	}
	if q.Has("ca") {
		c, err := tlsfiles.Client{CA: q.Get("ca")}.Config()
		if err != nil {
			return nil, fmt.Errorf("gnocchi: parameter %w", err)
		}
		opts = append(opts, WithTLS(c))
	}
	return opts, nil
}
