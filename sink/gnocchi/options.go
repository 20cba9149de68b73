package gnocchi

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink/internal/keystone"
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
	types         []ResourceType // WithResourceTypes, DefaultResourceTypes by default

	// auth is set by WithCloud, WithCloudsFile, WithRegion, WithInterface,
	// WithEndpoint, WithTimeout and WithTLS, the options the ceilometer sink
	// shares.
	auth keystone.Options
	// timeout bounds one Write: auth.Timeout, or DefaultTimeout (set by New).
	timeout time.Duration

	basic     bool
	basicUser string
}

// auth wraps one of the auth options shared with the ceilometer sink.
func auth(o keystone.Option) Option {
	return func(c *config) error { return o.Apply(&c.auth) }
}

// Option configures a Sink made by New.
type Option func(*config) error

// WithResourceType sets the type of the resources the sink creates for
// unknown resource ids (default "generic") when neither the label
// ResourceTypeLabel nor a ResourceType decides. A type with required
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
// measurement's Host). The resource type must define them. Labels prefixed
// meter.ReservedPrefix ("meterkit.", such as the level meter.StateLabel) are
// meterkit's own and never stored: naming one is an error.
func WithResourceAttributes(keys ...string) Option {
	return func(c *config) error {
		for _, k := range keys {
			if k == "" || k == "id" || k == "project_id" || k == "user_id" {
				return fmt.Errorf("WithResourceAttributes: %q cannot be a label attribute", k)
			}
			if strings.HasPrefix(k, meter.ReservedPrefix) {
				return fmt.Errorf("WithResourceAttributes: %q: labels prefixed %q are meterkit's own and never stored", k, meter.ReservedPrefix)
			}
		}
		c.attrs = append(c.attrs, keys...)
		return nil
	}
}

// WithTimeout bounds one Write, all its requests together, and each HTTP
// request too. Zero means DefaultTimeout (30 s); a negative duration makes
// New fail.
func WithTimeout(d time.Duration) Option { return auth(keystone.Timeout(d)) }

// WithTLS sets the TLS configuration (cloned) of the HTTP client, replacing
// what clouds.yaml says. A nil t makes New fail.
func WithTLS(t *tls.Config) Option { return auth(keystone.TLS(t)) }

// WithCloud names the clouds.yaml entry to authenticate with (default, or
// empty: OS_CLOUD, else the OS_* variables).
func WithCloud(name string) Option { return auth(keystone.Cloud(name)) }

// WithCloudsFile sets the clouds.yaml file to read (default, or empty: the
// usual search, OS_CLIENT_CONFIG_FILE first).
func WithCloudsFile(path string) Option { return auth(keystone.CloudsFile(path)) }

// WithPasswordFile names a file holding the Keystone password, which
// replaces clouds.yaml's; the file must be readable by its owner only
// (mode 0600), as tenant key files are. It goes with a cloud (WithCloud or
// OS_CLOUD).
func WithPasswordFile(path string) Option { return auth(keystone.PasswordFile(path)) }

// WithRegion overrides the region to look Gnocchi up in (default, or empty:
// what the credentials say).
func WithRegion(region string) Option { return auth(keystone.Region(region)) }

// WithInterface overrides the catalogue interface: "public" (default),
// "internal" or "admin". Empty means what the credentials say.
func WithInterface(iface string) Option { return auth(keystone.Interface(iface)) }

// WithEndpoint makes the sink talk to this Gnocchi URL (such as
// "http://gnocchi:8041/") instead of the metric endpoint of the catalogue;
// empty means the catalogue. With Keystone auth it still needs credentials
// for the token.
func WithEndpoint(u string) Option { return auth(keystone.Endpoint(u)) }

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
