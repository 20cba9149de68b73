package gnocchi

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Defaults for the options.
const (
	DefaultResourceType = "generic"
	// DefaultTimeout bounds one Write.
	DefaultTimeout = 30 * time.Second
	// DefaultBasicUser is the user basic auth mode sends: Gnocchi's own
	// default admin in auth_mode = basic.
	DefaultBasicUser = "admin"
)

type config struct {
	resourceType  string
	archivePolicy string
	attrs         []string
	timeout       time.Duration
	tls           *tls.Config

	cloud      string
	cloudsFile string
	region     string
	iface      string
	endpoint   string

	basic     bool
	basicUser string
}

// Option configures a Sink made by New.
type Option func(*config) error

// WithResourceType sets the type of the resources the sink creates for
// unknown resource ids (default "generic"). A type with required
// attributes needs WithResourceAttributes.
func WithResourceType(t string) Option {
	return func(c *config) error {
		if t == "" {
			return errors.New("WithResourceType: empty type")
		}
		c.resourceType = t
		return nil
	}
}

// WithArchivePolicy sets the archive policy of the metrics the sink creates
// (default: none named, so Gnocchi's archive policy rules choose).
func WithArchivePolicy(name string) Option {
	return func(c *config) error {
		c.archivePolicy = name
		return nil
	}
}

// WithResourceAttributes names labels that become attributes of a resource
// when the sink creates it (the attribute "host" falls back to the
// measurement's Host). The resource type must define them.
func WithResourceAttributes(keys ...string) Option {
	return func(c *config) error {
		for _, k := range keys {
			if k == "" || k == "id" || k == "project_id" || k == "user_id" {
				return fmt.Errorf("WithResourceAttributes: %q cannot be a label attribute", k)
			}
		}
		c.attrs = append(c.attrs, keys...)
		return nil
	}
}

// WithTimeout bounds one Write, all its requests together (default 30 s),
// and each HTTP request too.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithTimeout: %v is not positive", d)
		}
		c.timeout = d
		return nil
	}
}

// WithTLS sets the TLS configuration (cloned) of the HTTP client, replacing
// what clouds.yaml says.
func WithTLS(t *tls.Config) Option {
	return func(c *config) error {
		if t == nil {
			return errors.New("WithTLS: nil *tls.Config")
		}
		c.tls = t.Clone()
		return nil
	}
}

// WithCloud names the clouds.yaml entry to authenticate with (default:
// OS_CLOUD, else the OS_* variables).
func WithCloud(name string) Option {
	return func(c *config) error {
		c.cloud = name
		return nil
	}
}

// WithCloudsFile sets the clouds.yaml file to read (default: the usual
// search, OS_CLIENT_CONFIG_FILE first).
func WithCloudsFile(path string) Option {
	return func(c *config) error {
		c.cloudsFile = path
		return nil
	}
}

// WithRegion overrides the region to look Gnocchi up in.
func WithRegion(region string) Option {
	return func(c *config) error {
		c.region = region
		return nil
	}
}

// WithInterface overrides the catalogue interface: "public" (default),
// "internal" or "admin".
func WithInterface(iface string) Option {
	return func(c *config) error {
		c.iface = iface
		return nil
	}
}

// WithEndpoint makes the sink talk to this Gnocchi URL (such as
// "http://gnocchi:8041/") instead of the metric endpoint of the catalogue.
// With Keystone auth it still needs credentials for the token.
func WithEndpoint(u string) Option {
	return func(c *config) error {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("WithEndpoint: %q is not an http(s) URL", u)
		}
		c.endpoint = u
		return nil
	}
}

// WithBasicAuth talks to a Gnocchi running with auth_mode = basic: no
// Keystone, the user name in an Authorization: Basic header with an empty
// password (default user "admin"). It needs WithEndpoint.
func WithBasicAuth(user string) Option {
	return func(c *config) error {
		if user == "" {
			user = DefaultBasicUser
		}
		c.basic, c.basicUser = true, user
		return nil
	}
}
