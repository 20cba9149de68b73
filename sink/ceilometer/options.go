package ceilometer

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/meterkit/meter/internal/option"
	"github.com/meterkit/meter/sink/internal/keystone"
)

// Defaults for the options.
const (
	DefaultExchange    = "ceilometer"
	DefaultRoutingKey  = "notifications.sample"
	DefaultPublisherID = "meterkit"
	// DefaultBatchSize is how many samples one notification carries.
	DefaultBatchSize = 100
	// DefaultTimeout bounds one Write: publishing and waiting for the
	// broker's confirms, or the HTTP requests of the v2 sink.
	DefaultTimeout     = 30 * time.Second
	DefaultDialTimeout = 10 * time.Second
	// maxInFlight is how many notifications the notification sink publishes
	// before it waits for their confirms.
	maxInFlight = 256
)

type config struct {
	// both
	source string
	// auth is set by WithCloud, WithCloudsFile, WithRegion, WithInterface,
	// WithEndpoint (V2Options), WithTimeout and WithTLS (Options): the
	// options the gnocchi sink shares.
	auth keystone.Options
	// timeout bounds one Write: auth.Timeout, or DefaultTimeout.
	timeout time.Duration
	// tls is auth.TLS: of the AMQP connection or of the HTTP client.
	tls *tls.Config

	// notification sink
	exchange    string
	durable     bool
	routingKey  string
	publisherID string
	batch       int
	secret      []byte
	dialTimeout time.Duration
}

// NotifierOption configures the notification sink made by NewNotifier. The
// options that apply to that sink only return one; every Option is one too.
type NotifierOption interface{ applyNotifier(*config) error }

// V2Option configures the v2 API sink made by NewV2. The options that apply
// to that sink only return one; every Option is one too.
type V2Option interface{ applyV2(*config) error }

// Option configures either sink: it is a NotifierOption and a V2Option.
type Option func(*config) error

func (o Option) applyNotifier(c *config) error { return apply(o, c) }
func (o Option) applyV2(c *config) error       { return apply(o, c) }

type notifierOption func(*config) error

func (o notifierOption) applyNotifier(c *config) error { return apply(o, c) }

type v2Option func(*config) error

func (o v2Option) applyV2(c *config) error { return apply(o, c) }

func apply[F ~func(*config) error](f F, c *config) error {
	if f == nil {
		return nil
	}
	return f(c)
}

// newConfig applies opts in order over the defaults; apply is
// NotifierOption.applyNotifier or V2Option.applyV2.
func newConfig[O any](opts []O, apply func(O, *config) error) (config, error) {
	c := config{
		source:      DefaultSource,
		exchange:    DefaultExchange,
		routingKey:  DefaultRoutingKey,
		publisherID: DefaultPublisherID,
		batch:       DefaultBatchSize,
		dialTimeout: DefaultDialTimeout,
	}
	for _, o := range opts {
		if any(o) == nil {
			continue
		}
		if err := apply(o, &c); err != nil {
			return c, fmt.Errorf("ceilometer: %w", err)
		}
	}
	c.timeout = cmp.Or(c.auth.Timeout, DefaultTimeout)
	c.auth.Timeout, c.tls = c.timeout, c.auth.TLS
	return c, nil
}

// auth wraps one of the auth options shared with the gnocchi sink.
func auth(o keystone.Option) func(*config) error {
	return func(c *config) error { return o.Apply(&c.auth) }
}

// WithSource sets every sample's source (default "openstack").
func WithSource(s string) Option {
	return func(c *config) error {
		if s == "" {
			return errors.New("WithSource: empty source")
		}
		c.source = s
		return nil
	}
}

// WithTimeout bounds one Write (default 30 s); the ctx given to Write bounds
// it too. Zero means DefaultTimeout; a negative duration makes the
// constructor fail.
func WithTimeout(d time.Duration) Option { return Option(auth(keystone.Timeout(d))) }

// WithTLS sets the TLS configuration (cloned): of the AMQP connection for
// the notification sink (used with amqps:// URLs), of the HTTP client for
// the v2 sink (replacing what clouds.yaml says). A nil t makes the
// constructor fail.
func WithTLS(t *tls.Config) Option { return Option(auth(keystone.TLS(t))) }

// WithExchange sets the exchange the notification sink publishes to
// (default "ceilometer", Ceilometer's control_exchange).
func WithExchange(name string) NotifierOption {
	return notifierOption(func(c *config) error {
		if name == "" {
			return errors.New("WithExchange: empty name")
		}
		c.exchange = name
		return nil
	})
}

// WithDurable declares the exchange durable. The default, false, is how
// Ceilometer declares it; the two must agree, or the broker refuses the
// second declaration (406 PRECONDITION_FAILED).
func WithDurable(durable bool) NotifierOption {
	return notifierOption(func(c *config) error {
		c.durable = durable
		return nil
	})
}

// WithRoutingKey sets the routing key (default "notifications.sample", the
// topic "notifications" and priority "sample" Ceilometer listens on).
func WithRoutingKey(key string) NotifierOption {
	return notifierOption(func(c *config) error {
		if key == "" {
			return errors.New("WithRoutingKey: empty key")
		}
		c.routingKey = key
		return nil
	})
}

// WithPublisherID sets the notifications' publisher_id (default "meterkit").
func WithPublisherID(id string) NotifierOption {
	return notifierOption(func(c *config) error {
		if id == "" {
			return errors.New("WithPublisherID: empty id")
		}
		c.publisherID = id
		return nil
	})
}

// WithBatchSize sets how many samples one notification carries at most.
// Zero means DefaultBatchSize (100); a negative size makes NewNotifier fail.
func WithBatchSize(n int) NotifierOption {
	return notifierOption(func(c *config) error {
		return option.Set(&c.batch, "WithBatchSize", n, DefaultBatchSize)
	})
}

// WithSecret makes the notification sink sign every sample with
// message_signature, as Ceilometer does with its [publisher]
// telemetry_secret. The secret is copied and never appears in an error.
func WithSecret(secret []byte) NotifierOption {
	return notifierOption(func(c *config) error {
		if len(secret) == 0 {
			return errors.New("WithSecret: empty secret")
		}
		c.secret = append([]byte(nil), secret...)
		return nil
	})
}

// WithDialTimeout bounds connecting to the broker, TLS and AMQP handshakes
// included. Zero means DefaultDialTimeout (10 s); a negative duration makes
// NewNotifier fail.
func WithDialTimeout(d time.Duration) NotifierOption {
	return notifierOption(func(c *config) error {
		return option.Set(&c.dialTimeout, "WithDialTimeout", d, DefaultDialTimeout)
	})
}

// WithCloud names the clouds.yaml entry the v2 sink authenticates with
// (default, or empty: OS_CLOUD, else the OS_* variables).
func WithCloud(name string) V2Option { return v2Option(auth(keystone.Cloud(name))) }

// WithCloudsFile sets the clouds.yaml file to read (default, or empty: the
// usual search, OS_CLIENT_CONFIG_FILE first).
func WithCloudsFile(path string) V2Option { return v2Option(auth(keystone.CloudsFile(path))) }

// WithPasswordFile names a file holding the Keystone password of the v2
// sink, which replaces clouds.yaml's; the file must be readable by its
// owner only (mode 0600), as tenant key files are. It goes with a cloud
// (WithCloud or OS_CLOUD).
func WithPasswordFile(path string) V2Option { return v2Option(auth(keystone.PasswordFile(path))) }

// WithRegion overrides the region the v2 sink looks the metering service up
// in (default, or empty: what the credentials say).
func WithRegion(region string) V2Option { return v2Option(auth(keystone.Region(region))) }

// WithInterface overrides the catalogue interface: "public" (default),
// "internal" or "admin". Empty means what the credentials say.
func WithInterface(iface string) V2Option { return v2Option(auth(keystone.Interface(iface))) }

// WithEndpoint makes the v2 sink post to this Ceilometer API URL (such as
// "http://ceilometer:8777/") instead of the metering endpoint of the
// catalogue; empty means the catalogue. It still authenticates with
// Keystone for the token.
func WithEndpoint(url string) V2Option { return v2Option(auth(keystone.Endpoint(url))) }
