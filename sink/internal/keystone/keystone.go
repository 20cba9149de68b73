// Package keystone holds what the OpenStack sinks (sink/ceilometer and
// sink/gnocchi) share about Keystone: reading credentials from clouds.yaml or
// OS_* variables, authenticating lazily with re-authentication on 401, an
// HTTP client with bounded timeouts, classification of HTTP failures into
// sink.Permanent or retryable errors, and scrubbing secrets out of errors.
//
// It is internal: the sinks expose their own options and never this type.
package keystone

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"

	"github.com/meterkit/meter/internal/service"
	"github.com/meterkit/meter/sink"
)

// Defaults for Config.
const (
	// DefaultTimeout bounds one HTTP request, Keystone's included.
	DefaultTimeout = 30 * time.Second
	// DefaultIdleConnTimeout closes idle keep-alive connections before the
	// 60 s after which uwsgi's HTTP router (how Debian serves Keystone and
	// Gnocchi) drops them, so that a request never lands on a dead one.
	DefaultIdleConnTimeout = 30 * time.Second
)

// Config says where the credentials come from. The zero value reads
// clouds.yaml for the cloud named by OS_CLOUD when that is set, and the OS_*
// variables (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, ...)
// otherwise.
type Config struct {
	// Cloud names an entry of clouds.yaml; empty means OS_CLOUD.
	Cloud string
	// CloudsFile is the clouds.yaml to read; empty means the usual search
	// (OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack,
	// /etc/openstack).
	CloudsFile string
	// PasswordFile names a file holding the password, which replaces
	// clouds.yaml's (whose entry may then leave it out), so that the
	// password lives in a file only the service's user may read: a file
	// its group or others may read is refused. It goes with a cloud.
	PasswordFile string
	// Region overrides the region (clouds.yaml region_name, OS_REGION_NAME).
	Region string
	// Interface overrides the catalogue interface: public, internal or admin
	// (clouds.yaml interface, OS_INTERFACE; default public).
	Interface string
	// Timeout bounds each HTTP request; zero means DefaultTimeout.
	Timeout time.Duration
	// TLS replaces the TLS configuration that clouds.yaml gives (cacert,
	// cert, key, verify).
	TLS *tls.Config
}

// Session is an authenticated (or not yet authenticated) connection to an
// OpenStack cloud. It authenticates on first use, with AllowReauth, so that a
// 401 from any service makes gophercloud fetch a new token and retry once.
// A Session is safe for concurrent use.
type Session struct {
	auth    gophercloud.AuthOptions
	eo      gophercloud.EndpointOpts
	client  http.Client
	secrets []string

	mu       sync.Mutex
	provider *gophercloud.ProviderClient
}

// New reads the credentials that cfg points to. It does no network I/O.
func New(cfg Config) (*Session, error) {
	var (
		ao    gophercloud.AuthOptions
		eo    gophercloud.EndpointOpts
		tlsc  *tls.Config
		err   error
		cloud = cfg.Cloud
	)
	if cloud == "" {
		cloud = os.Getenv("OS_CLOUD")
	}
	if cloud != "" {
		opts := []clouds.ParseOption{clouds.WithCloudName(cloud)}
		if cfg.CloudsFile != "" {
			opts = append(opts, clouds.WithLocations(cfg.CloudsFile))
		}
		ao, eo, tlsc, err = clouds.Parse(opts...)
		if err != nil {
			return nil, fmt.Errorf("keystone: read cloud %q from clouds.yaml: %w", cloud, err)
		}
		if cfg.PasswordFile != "" {
			if ao.Password, err = service.ReadSecret(cfg.PasswordFile); err != nil {
				return nil, fmt.Errorf("keystone: password_file: %w", err)
			}
		}
	} else {
		if cfg.PasswordFile != "" {
			return nil, errors.New("keystone: password_file goes with a cloud of clouds.yaml (cloud= or OS_CLOUD); with the OS_* variables set OS_PASSWORD")
		}
		ao, err = authFromEnv()
		if err != nil {
			return nil, fmt.Errorf("keystone: no cloud named (set OS_CLOUD or cloud=) and OS_* variables incomplete: %w", err)
		}
		eo.Region = os.Getenv("OS_REGION_NAME")
		eo.Availability = availability(os.Getenv("OS_INTERFACE"))
	}
	if ao.IdentityEndpoint == "" {
		return nil, errors.New("keystone: no auth_url in the credentials")
	}
	// clouds.Parse ignores allow_reauth; a long-running sink needs it.
	ao.AllowReauth = true
	if cfg.Region != "" {
		eo.Region = cfg.Region
	}
	if cfg.Interface != "" {
		if err := checkInterface(cfg.Interface); err != nil {
			return nil, fmt.Errorf("keystone: %w", err)
		}
		eo.Availability = availability(cfg.Interface)
	}
	if cfg.TLS != nil {
		tlsc = cfg.TLS
	}
	s := &Session{auth: ao, eo: eo, client: NewHTTPClient(cfg.Timeout, tlsc)}
	for _, v := range []string{ao.Password, ao.TokenID, ao.ApplicationCredentialSecret, ao.Passcode} {
		if v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
	return s, nil
}

// authFromEnv reads the OS_* variables with openstack.AuthOptionsFromEnv,
// and also understands the openrc files Horizon hands out, which name the
// user's and the project's domains (OS_USER_DOMAIN_NAME,
// OS_PROJECT_DOMAIN_ID, ...) where AuthOptionsFromEnv wants OS_DOMAIN_*.
func authFromEnv() (gophercloud.AuthOptions, error) {
	userDomID, userDomName := os.Getenv("OS_USER_DOMAIN_ID"), os.Getenv("OS_USER_DOMAIN_NAME")
	projDomID, projDomName := os.Getenv("OS_PROJECT_DOMAIN_ID"), os.Getenv("OS_PROJECT_DOMAIN_NAME")
	ao, err := openstack.AuthOptionsFromEnv()
	var missing gophercloud.ErrMissingEnvironmentVariable
	switch {
	case err == nil:
	case errors.As(err, &missing) && missing.EnvironmentVariable == "OS_PROJECT_ID" &&
		userDomID+userDomName+projDomID+projDomName != "":
		// Only the domain was missing: the rest was complete.
		ao = gophercloud.AuthOptions{
			IdentityEndpoint: os.Getenv("OS_AUTH_URL"),
			Username:         os.Getenv("OS_USERNAME"),
			UserID:           os.Getenv("OS_USERID"),
			Password:         os.Getenv("OS_PASSWORD"),
			TenantName:       os.Getenv("OS_PROJECT_NAME"),
		}
	default:
		return ao, err
	}
	if ao.DomainID == "" && ao.DomainName == "" {
		ao.DomainID, ao.DomainName = userDomID, userDomName
	}
	if ao.Scope == nil && ao.TenantID == "" && ao.TenantName != "" && projDomID+projDomName != "" {
		ao.Scope = &gophercloud.AuthScope{ProjectName: ao.TenantName, DomainID: projDomID}
		if projDomID == "" {
			ao.Scope.DomainName = projDomName
		}
	}
	return ao, nil
}

func availability(s string) gophercloud.Availability {
	switch strings.TrimSuffix(s, "URL") {
	case "internal":
		return gophercloud.AvailabilityInternal
	case "admin":
		return gophercloud.AvailabilityAdmin
	default:
		return gophercloud.AvailabilityPublic
	}
}

// NewHTTPClient returns a client whose requests time out after timeout (zero
// means DefaultTimeout) and whose idle connections close after
// DefaultIdleConnTimeout. tlsc may be nil. The TLS configuration goes on our
// own transport: gophercloud's config.WithTLSConfig would replace it.
func NewHTTPClient(timeout time.Duration, tlsc *tls.Config) http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       DefaultIdleConnTimeout,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if tlsc != nil {
		tr.TLSClientConfig = tlsc.Clone()
	}
	return http.Client{Timeout: timeout, Transport: tr}
}

// EndpointOpts returns the region and interface to look services up with.
func (s *Session) EndpointOpts() gophercloud.EndpointOpts { return s.eo }

// IdentityEndpoint returns the auth_url, for error messages.
func (s *Session) IdentityEndpoint() string { return s.auth.IdentityEndpoint }

// Provider returns the authenticated provider client, authenticating first
// if no earlier call succeeded.
func (s *Session) Provider(ctx context.Context) (*gophercloud.ProviderClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider != nil {
		return s.provider, nil
	}
	p, err := openstack.NewClient(s.auth.IdentityEndpoint)
	if err != nil {
		return nil, RedactErr(fmt.Errorf("keystone: auth_url %s: %w", s.auth.IdentityEndpoint, err), s.secrets...)
	}
	p.HTTPClient = s.client
	p.UserAgent.Prepend("meterkit")
	if err := openstack.Authenticate(ctx, p, s.auth); err != nil {
		return nil, RedactErr(fmt.Errorf("keystone: authenticate at %s: %w", s.auth.IdentityEndpoint, err), s.secrets...)
	}
	s.provider = p
	return p, nil
}

// Close releases idle connections.
func (s *Session) Close() {
	s.client.CloseIdleConnections()
}

// Redact returns err with every secret (password, token, application
// credential secret, the current token) replaced by "[REDACTED]". An error
// that contains none is returned as it is, so errors.Is and errors.As still
// see through it; one that contains a secret loses its chain, except for the
// classification (Permanent) that Classify put on top of it.
func (s *Session) Redact(err error) error {
	if err == nil {
		return nil
	}
	secrets := s.secrets
	s.mu.Lock()
	if s.provider != nil {
		if t := s.provider.Token(); t != "" {
			secrets = append(secrets[:len(secrets):len(secrets)], t)
		}
	}
	s.mu.Unlock()
	return RedactErr(err, secrets...)
}

// Scrub replaces every occurrence of each non-empty secret in msg by
// "[REDACTED]".
func Scrub(msg string, secrets ...string) string {
	for _, v := range secrets {
		if v != "" {
			msg = strings.ReplaceAll(msg, v, "[REDACTED]")
		}
	}
	return msg
}

// RedactErr is Session.Redact with an explicit list of secrets.
func RedactErr(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := Scrub(msg, secrets...)
	if clean == msg {
		return err
	}
	if sink.IsPermanent(err) {
		return sink.Permanent(&redactedError{msg: clean})
	}
	return &redactedError{msg: clean}
}

type redactedError struct{ msg string }

func (e *redactedError) Error() string { return e.msg }
