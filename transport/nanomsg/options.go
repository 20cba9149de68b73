package nanomsg

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/meterkit/meter/internal/option"
	"github.com/meterkit/meter/transport"
)

// Defaults used when an option is not given or is given a zero value.
const (
	// DefaultMaxFrameSize bounds the size of one encoded envelope (4 MiB).
	DefaultMaxFrameSize = 4 << 20
	// DefaultResendInterval is how long a Sender waits for an answer before
	// it sends the same request again. A request is also sent again at once
	// when the connection that carried it breaks.
	DefaultResendInterval = 10 * time.Second
	// DefaultReconnectMin and DefaultReconnectMax bound the wait between
	// attempts to re-establish a broken or refused connection; the wait
	// doubles from the minimum up to the maximum.
	DefaultReconnectMin = 100 * time.Millisecond
	DefaultReconnectMax = 5 * time.Second
	// DefaultConcurrency is the number of envelopes a Receiver works on at
	// once, and the number of requests a Sender keeps in flight at once.
	DefaultConcurrency = 4
)

// ackSendTimeout bounds how long a Receiver waits to hand an ack to a peer
// that does not read it.
const ackSendTimeout = 10 * time.Second

// DialOption configures Dial, and ListenOption configures Listen. An
// option that makes sense on one side only is of that side's type, so that
// a misplaced one does not compile; an Option works on both. Options follow
// the package convention (see the root package's doc, Options): zero means
// the default, a negative count or duration is an error from Dial or Listen
// that names the option.
type (
	DialOption   interface{ applyDial(*config) error }
	ListenOption interface{ applyListen(*config) error }
	// Option configures both Dial and Listen.
	Option interface {
		DialOption
		ListenOption
	}
)

type (
	bothOption   func(*config) error
	dialOption   func(*config) error
	listenOption func(*config) error
)

func (o bothOption) applyDial(c *config) error     { return o(c) }
func (o bothOption) applyListen(c *config) error   { return o(c) }
func (o dialOption) applyDial(c *config) error     { return o(c) }
func (o listenOption) applyListen(c *config) error { return o(c) }

// nonNegative is option.Check with the package's prefix on its error.
func nonNegative[T int | time.Duration](name string, v T) error {
	if err := option.Check(name, v); err != nil {
		return fmt.Errorf("nanomsg: %w", err)
	}
	return nil
}

type config struct {
	maxFrame    int
	resend      time.Duration
	reconnMin   time.Duration
	reconnMax   time.Duration
	concurrency int
	limits      transport.Limits
	limitsSet   bool
	logger      *slog.Logger
	tls         *tls.Config
}

// WithMaxFrameSize bounds the size in bytes of one frame: a Sender refuses
// to send a larger envelope (the error wraps transport.ErrTooLarge), and a
// Receiver answers StatusRejected to one. It overrides the MaxFrameSize of
// WithLimits. The default is DefaultMaxFrameSize.
//
// The connection itself accepts frames up to twice this size, so that a
// peer configured with a larger limit gets a rejection it can log; a larger
// frame makes the Receiver drop the connection.
func WithMaxFrameSize(n int) Option {
	return bothOption(func(c *config) error { c.maxFrame = n; return nonNegative("WithMaxFrameSize", n) })
}

// WithResendInterval sets how long a Sender waits for an answer before it
// sends the request again (DefaultResendInterval when d is zero). The
// receiver may then see the same envelope twice; publishers de-duplicate by
// (agent, seq).
func WithResendInterval(d time.Duration) DialOption {
	return dialOption(func(c *config) error { c.resend = d; return nonNegative("WithResendInterval", d) })
}

// WithReconnect bounds the wait between connection attempts: it starts at
// min and doubles up to max (DefaultReconnectMin and DefaultReconnectMax for
// zero values).
func WithReconnect(min, max time.Duration) DialOption {
	return dialOption(func(c *config) error {
		c.reconnMin, c.reconnMax = min, max
		return errors.Join(nonNegative("WithReconnect min", min), nonNegative("WithReconnect max", max))
	})
}

// WithConcurrency sets how many envelopes a Receiver works on at once (how
// many Deliveries can be out awaiting their Ack), or how many requests a
// Sender keeps in flight at once; further Sends wait for a free slot.
// The default is DefaultConcurrency.
func WithConcurrency(n int) Option {
	return bothOption(func(c *config) error { c.concurrency = n; return nonNegative("WithConcurrency", n) })
}

// WithLimits sets the decoder limits of a Receiver (transport.DefaultLimits
// otherwise). WithMaxFrameSize, when given, overrides its MaxFrameSize.
func WithLimits(l transport.Limits) ListenOption {
	return listenOption(func(c *config) error { c.limits, c.limitsSet = l, true; return nil })
}

// WithLogger sets where a Receiver reports frames it rejects as malformed
// (slog.Default otherwise). Senders return their errors, and log only why
// they cannot connect when a Send gets no answer (see Sender.Probe).
func WithLogger(l *slog.Logger) Option {
	return bothOption(func(c *config) error { c.logger = l; return nil })
}

// WithTLS sets the TLS configuration used with tls+tcp:// addresses, which
// require it. A Listener's config needs a certificate; set ClientAuth and
// ClientCAs for mutual TLS. A Sender's config needs RootCAs (or the system
// pool) and ServerName when the address is an IP, and Certificates for mutual
// TLS. The config is not used with other schemes.
func WithTLS(cfg *tls.Config) Option {
	return bothOption(func(c *config) error { c.tls = cfg; return nil })
}

// dialConfig and listenConfig apply one side's options and the defaults.
func dialConfig(opts []DialOption) (config, error) {
	var c config
	var errs []error
	for _, o := range opts {
		if o != nil {
			errs = append(errs, o.applyDial(&c))
		}
	}
	return c.withDefaults(), errors.Join(errs...)
}

func listenConfig(opts []ListenOption) (config, error) {
	var c config
	var errs []error
	for _, o := range opts {
		if o != nil {
			errs = append(errs, o.applyListen(&c))
		}
	}
	return c.withDefaults(), errors.Join(errs...)
}

func (c config) withDefaults() config {
	if !c.limitsSet {
		c.limits = transport.DefaultLimits()
	}
	if c.maxFrame <= 0 {
		c.maxFrame = DefaultMaxFrameSize
		if c.limitsSet && c.limits.MaxFrameSize > 0 {
			c.maxFrame = c.limits.MaxFrameSize
		}
	}
	c.limits.MaxFrameSize = c.maxFrame
	if c.resend <= 0 {
		c.resend = DefaultResendInterval
	}
	if c.reconnMin <= 0 {
		c.reconnMin = DefaultReconnectMin
	}
	if c.reconnMax <= 0 {
		c.reconnMax = DefaultReconnectMax
	}
	if c.reconnMax < c.reconnMin {
		c.reconnMax = c.reconnMin
	}
	if c.concurrency <= 0 {
		c.concurrency = DefaultConcurrency
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c
}
