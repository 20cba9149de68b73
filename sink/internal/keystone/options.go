package keystone

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Options is what the auth options of the OpenStack sinks set: the Config
// that New reads credentials with, and the service URL that replaces the
// catalogue's. Each sink keeps one in its config, and its exported options
// (gnocchi.WithCloud, ceilometer.WithCloud, ...) are one-line wrappers around
// the Option of the same name here, so that both sinks validate and default
// them alike. The zero Options is the default.
type Options struct {
	Config
	// Endpoint is the service's http(s) URL, used instead of the one in the
	// catalogue; empty means the catalogue.
	Endpoint string
}

// An Option validates and sets one field of Options.
type Option struct {
	// Name is the sinks' name for the option ("WithCloud"): Apply's errors
	// start with it, and a sink that takes the option in one mode only
	// names it in its refusal.
	Name string
	set  func(*Options) error
}

// Apply sets the option's field of o, or returns an error that starts with
// the option's name ("WithTimeout: negative duration -1s").
func (opt Option) Apply(o *Options) error {
	if err := opt.set(o); err != nil {
		return fmt.Errorf("%s: %w", opt.Name, err)
	}
	return nil
}

// Cloud sets Config.Cloud: the clouds.yaml entry; empty means OS_CLOUD, else
// the OS_* variables.
func Cloud(name string) Option {
	return Option{"WithCloud", func(o *Options) error { o.Cloud = name; return nil }}
}

// CloudsFile sets Config.CloudsFile: the clouds.yaml file; empty means the
// usual search.
func CloudsFile(path string) Option {
	return Option{"WithCloudsFile", func(o *Options) error { o.CloudsFile = path; return nil }}
}

// PasswordFile sets Config.PasswordFile: a file holding the password.
func PasswordFile(path string) Option {
	return Option{"WithPasswordFile", func(o *Options) error { o.PasswordFile = path; return nil }}
}

// Region sets Config.Region; empty means what the credentials say.
func Region(region string) Option {
	return Option{"WithRegion", func(o *Options) error { o.Region = region; return nil }}
}

// Interface sets Config.Interface, which must be public, internal or admin
// (with or without the suffix URL); empty means what the credentials say,
// else public.
func Interface(iface string) Option {
	return Option{"WithInterface", func(o *Options) error {
		if err := checkInterface(iface); err != nil {
			return err
		}
		o.Interface = iface
		return nil
	}}
}

func checkInterface(iface string) error {
	switch iface {
	case "", "public", "internal", "admin", "publicURL", "internalURL", "adminURL":
		return nil
	}
	return fmt.Errorf("interface %q is not public, internal or admin", iface)
}

// Endpoint sets Options.Endpoint, which must be an http(s) URL with a host;
// empty means the catalogue.
func Endpoint(u string) Option {
	return Option{"WithEndpoint", func(o *Options) error {
		if u != "" {
			p, err := url.Parse(u)
			if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				return fmt.Errorf("%q is not an http(s) URL", u)
			}
		}
		o.Endpoint = u
		return nil
	}}
}

// Timeout sets Config.Timeout, which bounds each HTTP request; zero means
// DefaultTimeout, a negative duration is an error.
func Timeout(d time.Duration) Option {
	return Option{"WithTimeout", func(o *Options) error {
		if d < 0 {
			return fmt.Errorf("negative duration %v", d)
		}
		o.Timeout = d
		return nil
	}}
}

// TLS sets Config.TLS to a clone of t, which replaces what clouds.yaml says;
// nil is an error.
func TLS(t *tls.Config) Option {
	return Option{"WithTLS", func(o *Options) error {
		if t == nil {
			return errors.New("nil *tls.Config")
		}
		o.TLS = t.Clone()
		return nil
	}}
}
