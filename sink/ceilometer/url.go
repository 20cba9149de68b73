package ceilometer

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meterkit/meter/internal/tlsfiles"
	"github.com/meterkit/meter/sink"
)

func init() {
	sink.RegisterScheme("ceilometer+amqp", open)
	sink.RegisterScheme("ceilometer+amqps", open)
	sink.RegisterScheme("ceilometer", open)
	sink.RegisterScheme("ceilometer+http", open)
	sink.RegisterScheme("ceilometer+https", open)
}

// Query parameters each kind of URL takes.
var (
	amqpParams = []string{"exchange", "durable", "routing_key", "publisher_id", "batch", "secret_env",
		"source", "timeout", "dial_timeout"}
	amqpsParams = []string{"ca", "cert", "key", "server_name"}
	v2Params    = []string{"cloud", "clouds_file", "password_file", "region", "interface", "source", "timeout", "ca"}
)

// open is the sink.Opener for every scheme this package registers.
func open(_ context.Context, u *url.URL) (sink.Sink, error) {
	switch u.Scheme {
	case "ceilometer+amqp", "ceilometer+amqps":
		amqpURL, opts, err := notifierURL(u)
		if err != nil {
			return nil, err
		}
		return NewNotifier(amqpURL, opts...)
	case "ceilometer", "ceilometer+http", "ceilometer+https":
		opts, err := v2URL(u)
		if err != nil {
			return nil, err
		}
		return NewV2(opts...)
	}
	return nil, fmt.Errorf("ceilometer: unknown scheme %q", u.Scheme)
}

func parseQuery(u *url.URL, allowed []string) (url.Values, error) {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("ceilometer: bad query: %w", err)
	}
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("ceilometer: unknown parameter %q for %s:// (known: %v)", k, u.Scheme, allowed)
		}
		if len(vs) > 1 {
			return nil, fmt.Errorf("ceilometer: parameter %q given %d times", k, len(vs))
		}
	}
	return q, nil
}

// notifierURL turns a ceilometer+amqp(s):// URL into the broker's amqp(s)://
// URL (user, password, host, port and vhost kept) and options.
func notifierURL(u *url.URL) (string, []NotifierOption, error) {
	allowed := amqpParams
	if u.Scheme == "ceilometer+amqps" {
		allowed = append(slices.Clone(amqpParams), amqpsParams...)
	}
	q, err := parseQuery(u, allowed)
	if err != nil {
		return "", nil, err
	}
	if u.Host == "" {
		return "", nil, fmt.Errorf("ceilometer: %s:// URL has no host (want %s://user:pass@host:5672/?exchange=ceilometer)", u.Scheme, u.Scheme)
	}
	b := *u
	b.Scheme = strings.TrimPrefix(u.Scheme, "ceilometer+")
	b.RawQuery, b.ForceQuery, b.Fragment = "", false, ""
	var opts []NotifierOption
	for k, set := range map[string]func(string) NotifierOption{
		"exchange": WithExchange, "routing_key": WithRoutingKey, "publisher_id": WithPublisherID,
		"source": func(s string) NotifierOption { return WithSource(s) },
	} {
		if q.Has(k) {
			opts = append(opts, set(q.Get(k)))
		}
	}
	if q.Has("durable") {
		d, err := strconv.ParseBool(q.Get("durable"))
		if err != nil {
			return "", nil, fmt.Errorf("ceilometer: parameter durable: %q is not true or false", q.Get("durable"))
		}
		opts = append(opts, WithDurable(d))
	}
	if q.Has("batch") {
		n, err := strconv.Atoi(q.Get("batch"))
		if err != nil || n < 1 {
			return "", nil, fmt.Errorf("ceilometer: parameter batch: %q is not a whole number >= 1", q.Get("batch"))
		}
		opts = append(opts, WithBatchSize(n))
	}
	if q.Has("secret_env") {
		name := q.Get("secret_env")
		v := os.Getenv(name)
		if v == "" {
			return "", nil, fmt.Errorf("ceilometer: parameter secret_env: environment variable %q is empty or unset", name)
		}
		opts = append(opts, WithSecret([]byte(v)))
	}
	for _, p := range []struct {
		name string
		opt  func(time.Duration) NotifierOption
	}{{"timeout", func(d time.Duration) NotifierOption { return WithTimeout(d) }}, {"dial_timeout", WithDialTimeout}} {
		if q.Has(p.name) {
			o, err := durationOpt(q, p.name, p.opt)
			if err != nil {
				return "", nil, err
			}
			opts = append(opts, o)
		}
	}
	if u.Scheme == "ceilometer+amqps" {
		c, err := tlsConfig(q)
		if err != nil {
			return "", nil, err
		}
		opts = append(opts, WithTLS(c))
	}
	return b.String(), opts, nil
}

func durationOpt[O any](q url.Values, name string, opt func(time.Duration) O) (O, error) {
	d, err := time.ParseDuration(q.Get(name))
	if err != nil || d <= 0 {
		var none O
		return none, fmt.Errorf("ceilometer: parameter %s: %q is not a positive duration (want 5s, 500ms)", name, q.Get(name))
	}
	return opt(d), nil
}

// v2URL turns a ceilometer://, ceilometer+http:// or ceilometer+https://
// URL into options for NewV2. A host, when given, is the API endpoint;
// without one the sink looks "metering" up in the catalogue.
func v2URL(u *url.URL) ([]V2Option, error) {
	q, err := parseQuery(u, v2Params)
	if err != nil {
		return nil, err
	}
	if u.User != nil {
		return nil, fmt.Errorf("ceilometer: %s:// URL takes no user: credentials come from clouds.yaml or OS_* variables", u.Scheme)
	}
	var opts []V2Option
	if u.Host != "" {
		scheme := "http"
		if u.Scheme == "ceilometer+https" {
			scheme = "https"
		}
		opts = append(opts, WithEndpoint((&url.URL{Scheme: scheme, Host: u.Host, Path: u.Path}).String()))
	} else if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("ceilometer: %s:// URL has a path but no host", u.Scheme)
	}
	for k, set := range map[string]func(string) V2Option{
		"cloud": WithCloud, "clouds_file": WithCloudsFile, "password_file": WithPasswordFile, "region": WithRegion, "interface": WithInterface,
		"source": func(s string) V2Option { return WithSource(s) },
	} {
		if q.Has(k) {
			opts = append(opts, set(q.Get(k)))
		}
	}
	if q.Has("timeout") {
		o, err := durationOpt(q, "timeout", WithTimeout)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	if q.Has("ca") {
		c, err := tlsConfig(q)
		if err != nil {
			return nil, err
		}
		opts = append(opts, WithTLS(c))
	}
	return opts, nil
}

// tlsConfig builds a client TLS configuration from ca=, cert=, key= and
// server_name= (all optional; cert and key go together).
func tlsConfig(q url.Values) (*tls.Config, error) {
	f := tlsfiles.Client{CA: q.Get("ca"), Cert: q.Get("cert"), Key: q.Get("key"), ServerName: q.Get("server_name")}
	c, err := f.Config()
	if err != nil {
		return nil, fmt.Errorf("ceilometer: parameter %w", err)
	}
	return c, nil
}
