package ceilometer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"
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

type mode uint8

const (
	modeNotifier mode = iota
	modeV2
)

func (m mode) String() string {
	if m == modeV2 {
		return "the v2 API sink (NewV2)"
	}
	return "the notification sink (NewNotifier)"
}

type config struct {
	mode mode

	// both
	source  string
	timeout time.Duration
	tls     *tls.Config

	// notification sink
	exchange    string
	durable     bool
	routingKey  string
	publisherID string
	batch       int
	secret      []byte
	dialTimeout time.Duration

	// v2 sink
	cloud      string
	cloudsFile string
	region     string
	iface      string
	endpoint   string
}

func newConfig(m mode, opts []Option) (config, error) {
	c := config{
		mode:        m,
		source:      DefaultSource,
		timeout:     DefaultTimeout,
		exchange:    DefaultExchange,
		routingKey:  DefaultRoutingKey,
		publisherID: DefaultPublisherID,
		batch:       DefaultBatchSize,
		dialTimeout: DefaultDialTimeout,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return c, fmt.Errorf("ceilometer: %w", err)
		}
	}
	return c, nil
}

// Option configures a sink made by NewNotifier or NewV2. Options that make
// sense for one of them only make the other constructor fail.
type Option func(*config) error

func only(m mode, name string, c *config) error {
	if c.mode != m {
		return fmt.Errorf("%s does not apply to %s", name, c.mode)
	}
	return nil
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
// it too.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithTimeout: %v is not positive", d)
		}
		c.timeout = d
		return nil
	}
}

// WithTLS sets the TLS configuration (cloned): of the AMQP connection for
// the notification sink (used with amqps:// URLs), of the HTTP client for
// the v2 sink (replacing what clouds.yaml says).
func WithTLS(t *tls.Config) Option {
	return func(c *config) error {
		if t == nil {
			return errors.New("WithTLS: nil *tls.Config")
		}
		c.tls = t.Clone()
		return nil
	}
}

// WithExchange sets the exchange the notification sink publishes to
// (default "ceilometer", Ceilometer's control_exchange).
func WithExchange(name string) Option {
	return func(c *config) error {
		if err := only(modeNotifier, "WithExchange", c); err != nil {
			return err
		}
		if name == "" {
			return errors.New("WithExchange: empty name")
		}
		c.exchange = name
		return nil
	}
}

// WithDurable declares the exchange durable. The default, false, is how
// Ceilometer declares it; the two must agree, or the broker refuses the
// second declaration (406 PRECONDITION_FAILED).
func WithDurable(durable bool) Option {
	return func(c *config) error {
		if err := only(modeNotifier, "WithDurable", c); err != nil {
			return err
		}
		c.durable = durable
		return nil
	}
}

// WithRoutingKey sets the routing key (default "notifications.sample", the
// topic "notifications" and priority "sample" Ceilometer listens on).
func WithRoutingKey(key string) Option {
	return func(c *config) error {
		if err := only(modeNotifier, "WithRoutingKey", c); err != nil {
			return err
		}
		if key == "" {
			return errors.New("WithRoutingKey: empty key")
		}
		c.routingKey = key
		return nil
	}
}

// WithPublisherID sets the notifications' publisher_id (default "meterkit").
func WithPublisherID(id string) Option {
	return func(c *config) error {
		if err := only(modeNotifier, "WithPublisherID", c); err != nil {
			return err
		}
		if id == "" {
			return errors.New("WithPublisherID: empty id")
		}
		c.publisherID = id
		return nil
	}
}

// WithBatchSize sets how many samples one notification carries at most
// (default 100).
func WithBatchSize(n int) Option {
	return func(c *config) error {
		if err := only(modeNotifier, "WithBatchSize", c); err != nil {
			return err
		}
		if n < 1 {
			return fmt.Errorf("WithBatchSize: %d is not >= 1", n)
		}
		c.batch = n
		return nil
	}
}

// WithSecret makes the notification sink sign every sample with
// message_signature, as Ceilometer does with its [publisher]
// telemetry_secret. The secret is copied and never appears in an error.
func WithSecret(secret []byte) Option {
	return func(c *config) error {
		if err := only(modeNotifier, "WithSecret", c); err != nil {
			return err
		}
		if len(secret) == 0 {
			return errors.New("WithSecret: empty secret")
		}
		c.secret = append([]byte(nil), secret...)
		return nil
	}
}

// WithDialTimeout bounds connecting to the broker, TLS and AMQP handshakes
// included (default 10 s).
func WithDialTimeout(d time.Duration) Option {
	return func(c *config) error {
		if err := only(modeNotifier, "WithDialTimeout", c); err != nil {
			return err
		}
		if d <= 0 {
			return fmt.Errorf("WithDialTimeout: %v is not positive", d)
		}
		c.dialTimeout = d
		return nil
	}
}

// WithCloud names the clouds.yaml entry the v2 sink authenticates with
// (default: OS_CLOUD, else the OS_* variables).
func WithCloud(name string) Option {
	return func(c *config) error {
		if err := only(modeV2, "WithCloud", c); err != nil {
			return err
		}
		c.cloud = name
		return nil
	}
}

// WithCloudsFile sets the clouds.yaml file to read (default: the usual
// search, OS_CLIENT_CONFIG_FILE first).
func WithCloudsFile(path string) Option {
	return func(c *config) error {
		if err := only(modeV2, "WithCloudsFile", c); err != nil {
			return err
		}
		c.cloudsFile = path
		return nil
	}
}

// WithRegion overrides the region the v2 sink looks the metering service up
// in.
func WithRegion(region string) Option {
	return func(c *config) error {
		if err := only(modeV2, "WithRegion", c); err != nil {
			return err
		}
		c.region = region
		return nil
	}
}

// WithInterface overrides the catalogue interface: "public" (default),
// "internal" or "admin".
func WithInterface(iface string) Option {
	return func(c *config) error {
		if err := only(modeV2, "WithInterface", c); err != nil {
			return err
		}
		c.iface = iface
		return nil
	}
}

// WithEndpoint makes the v2 sink post to this Ceilometer API URL (such as
// "http://ceilometer:8777/") instead of the metering endpoint of the
// catalogue. It still authenticates with Keystone for the token.
func WithEndpoint(url string) Option {
	return func(c *config) error {
		if err := only(modeV2, "WithEndpoint", c); err != nil {
			return err
		}
		c.endpoint = url
		return nil
	}
}
