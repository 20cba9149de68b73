package notification

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/internal/service"
	"github.com/meterkit/meter/internal/statslog"
	"github.com/meterkit/meter/internal/tlsfiles"
)

func init() {
	driver.Register("notification", func(cfg driver.Config) (driver.Driver, error) { return New(cfg) })
}

// Defaults of Config.
const (
	DefaultURL           = "amqp://guest:guest@127.0.0.1:5672/"
	DefaultQueue         = "meterkit-notifications"
	DefaultRoutingKey    = "notifications.info"
	DefaultPrefetch      = 100
	DefaultRetryInterval = 5 * time.Second
	DefaultDialTimeout   = 10 * time.Second
	DefaultRecentIDs     = 10000
	DefaultStatsEvery    = time.Minute
)

// DefaultExchanges are the control exchanges the driver binds its queue to
// by default: those of Nova, Cinder and Glance, and oslo.messaging's default.
var DefaultExchanges = []string{"nova", "cinder", "glance", "openstack"}

// Config is the configuration of the notification driver. Its zero value
// consumes from the local RabbitMQ as guest, through queue
// meterkit-notifications bound to the default exchanges, with the shipped
// meter definitions.
type Config struct {
	// URL is the broker's AMQP URL (amqp:// or amqps://), DefaultURL by
	// default. Credentials in it are used unless CredentialsFile is set.
	URL string `json:"url,omitempty"`
	// CredentialsFile names a file holding "user:password" on its first
	// line, which replaces the URL's credentials: the password stays out of
	// the config file. Read when the driver is made; like a tenant key file,
	// a file that its group or others may read is refused (chmod 600).
	CredentialsFile string `json:"credentials_file,omitempty"`
	// CA, Cert, Key and ServerName configure TLS for an amqps:// URL: the
	// CAs the broker's certificate must chain to (the system's when empty),
	// a client certificate and key for mutual TLS, and the name the
	// broker's certificate must carry (the URL's host when empty).
	CA         string `json:"ca,omitempty"`
	Cert       string `json:"cert,omitempty"`
	Key        string `json:"key,omitempty"`
	ServerName string `json:"server_name,omitempty"`
	// Queue is the driver's own queue, DefaultQueue by default: its own so
	// that it coexists with Ceilometer's agent (which consumes
	// notifications.info) rather than taking half of its messages.
	Queue string `json:"queue,omitempty"`
	// Transient declares the queue non-durable: it then does not survive a
	// broker restart. Default: durable.
	Transient bool `json:"transient,omitempty"`
	// MaxLength caps the queue's messages (x-max-length; the oldest are
	// dropped by the broker). Zero: no cap.
	MaxLength int `json:"max_length,omitempty"`
	// MessageTTL drops messages older than this from the queue
	// (x-message-ttl). Zero: no limit.
	MessageTTL driver.Duration `json:"message_ttl,omitempty"`
	// Exchanges are the control exchanges to bind the queue to,
	// DefaultExchanges by default. They are declared passively (the services
	// create them): one that does not exist yet is tried again every
	// RetryInterval.
	Exchanges []string `json:"exchanges,omitempty"`
	// RoutingKey binds the queue, DefaultRoutingKey by default.
	RoutingKey string `json:"routing_key,omitempty"`
	// Prefetch is how many unacknowledged messages the broker hands over at
	// once, DefaultPrefetch by default: it bounds what waits for the spool.
	Prefetch int `json:"prefetch,omitempty"`
	// Definitions is a YAML file of meter definitions (see
	// DefaultDefinitions); empty uses the shipped ones.
	Definitions string `json:"definitions,omitempty"`
	// RetryInterval is the wait before reconnecting and between passive
	// declarations of missing exchanges, DefaultRetryInterval by default.
	RetryInterval driver.Duration `json:"retry_interval,omitempty"`
	// DialTimeout bounds connecting to the broker, DefaultDialTimeout by
	// default.
	DialTimeout driver.Duration `json:"dial_timeout,omitempty"`
	// RecentIDs is how many message ids of notifications made durable the
	// driver remembers, DefaultRecentIDs by default: a redelivered message
	// among them (its ack was lost with the connection) is acknowledged
	// without being delivered again. The window lives in memory: after a
	// restart of the agent, a redelivery is delivered again.
	RecentIDs int `json:"recent_ids,omitempty"`
	// StatsEvery is how often Push logs the driver's counters (Stats) as a
	// "notification stats" line, DefaultStatsEvery by default; it logs
	// them once more when it returns.
	StatsEvery driver.Duration `json:"stats_every,omitempty"`
}

// Driver consumes OpenStack notifications and delivers them as
// measurements. It is a driver.Pusher: the agent runs Push; Collect returns
// nothing.
type Driver struct {
	cfg  Config
	url  string      // URL with the credentials of CredentialsFile
	tls  *tls.Config // for amqps://, nil otherwise
	defs *Definitions
	log  *slog.Logger
	c    counters
	seen recent
}

// New is the driver's factory, registered as "notification". It decodes cfg
// into a Config and checks it; it does not connect (Push does).
func New(cfg driver.Config) (*Driver, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("notification: %w", err)
	}
	return NewDriver(c, nil)
}

// NewDriver makes a driver from c, logging to log (slog.Default() if nil).
func NewDriver(c Config, log *slog.Logger) (*Driver, error) {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
		return nil, fmt.Errorf("notification: url %q: want amqp:// or amqps://", redact(c.URL))
	}
	d := &Driver{url: c.URL}
	if c.CredentialsFile != "" {
		b, err := service.ReadSecret(c.CredentialsFile) // refuses a file others may read
		if err != nil {
			return nil, fmt.Errorf("notification: credentials_file: %w", err)
		}
		line, _, _ := strings.Cut(b, "\n")
		user, pass, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("notification: credentials_file %s: want user:password on the first line", c.CredentialsFile)
		}
		u.User = url.UserPassword(user, pass)
		d.url = u.String()
	}
	if u.Scheme == "amqps" {
		if d.tls, err = (tlsfiles.Client{CA: c.CA, Cert: c.Cert, Key: c.Key, ServerName: c.ServerName}).Config(); err != nil {
			return nil, fmt.Errorf("notification: tls: %w", err)
		}
	} else if c.CA != "" || c.Cert != "" || c.Key != "" {
		return nil, errors.New("notification: ca, cert and key need an amqps:// url")
	}
	if c.Queue == "" {
		c.Queue = DefaultQueue
	}
	if len(c.Exchanges) == 0 {
		c.Exchanges = DefaultExchanges
	}
	if c.RoutingKey == "" {
		c.RoutingKey = DefaultRoutingKey
	}
	if c.Prefetch <= 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = driver.Duration(DefaultRetryInterval)
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = driver.Duration(DefaultDialTimeout)
	}
	if c.RecentIDs <= 0 {
		c.RecentIDs = DefaultRecentIDs
	}
	if c.MaxLength < 0 || c.MessageTTL < 0 {
		return nil, errors.New("notification: max_length and message_ttl must not be negative")
	}
	switch {
	case c.StatsEvery < 0:
		return nil, fmt.Errorf("notification: stats_every %v must not be negative", time.Duration(c.StatsEvery))
	case c.StatsEvery == 0:
		c.StatsEvery = driver.Duration(DefaultStatsEvery)
	}
	src := defaultDefinitions
	if c.Definitions != "" {
		if src, err = os.ReadFile(c.Definitions); err != nil {
			return nil, fmt.Errorf("notification: %w", err)
		}
	}
	defs, err := ParseDefinitions(src)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	d.cfg, d.defs, d.log = c, defs, log.With("driver", "notification", "queue", c.Queue)
	d.seen.ring = make([]string, c.RecentIDs)
	d.seen.ids = make(map[string]struct{}, c.RecentIDs)
	return d, nil
}

// RequiresSpool reports true (driver.SpoolRequirer): a message is
// acknowledged to the broker, which then forgets it, once its measurements
// are durable, and only the agent's disk spool makes them so before the
// publisher has them. The agent refuses to run the driver without a spool.
func (d *Driver) RequiresSpool() bool { return true }

// Collect returns nothing: the driver pushes (see Push).
func (d *Driver) Collect(context.Context) ([]meter.Measurement, error) { return nil, nil }

// Push consumes notifications until ctx ends, reconnecting after every
// RetryInterval when the broker goes away. Each notification becomes the
// measurements of the definitions that match its event type, delivered
// together; the message is acknowledged to the broker only when deliver's
// ack says they are durable, and given back to the queue (nack with
// requeue, after RetryInterval) when it says they were not. A message that is not a notification
// is counted, logged and rejected without requeue; one that no definition
// matches is acknowledged and counted. Push returns nil when ctx ends.
func (d *Driver) Push(ctx context.Context, deliver driver.Deliver) error {
	var wg sync.WaitGroup
	wg.Go(func() {
		statslog.Every(ctx, d.log, "notification stats", time.Duration(d.cfg.StatsEvery), func() slog.LogValuer { return d.Stats() })
	})
	defer func() {
		wg.Wait()
		d.log.Info("notification stats", slog.Any("", d.Stats()))
	}()
	for {
		err := d.session(ctx, deliver)
		if ctx.Err() != nil {
			return nil
		}
		d.c.reconnects.Add(1)
		d.log.Warn("connection to the broker lost or refused; reconnecting", "in", time.Duration(d.cfg.RetryInterval), "err", err)
		t := time.NewTimer(time.Duration(d.cfg.RetryInterval))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session is one connection: declare, bind, consume until ctx ends or the
// connection fails.
func (d *Driver) session(ctx context.Context, deliver driver.Deliver) error {
	conn, err := amqp.DialConfig(d.url, amqp.Config{
		Dial:            amqp.DefaultDial(time.Duration(d.cfg.DialTimeout)),
		TLSClientConfig: d.tls,
		Properties:      amqp.Table{"connection_name": "meterkit notification driver"},
	})
	if err != nil {
		return fmt.Errorf("notification: dial %s: %w", redact(d.cfg.URL), err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("notification: open channel: %w", err)
	}
	if err := ch.Qos(d.cfg.Prefetch, 0, false); err != nil {
		return fmt.Errorf("notification: qos: %w", err)
	}
	args := amqp.Table{}
	if d.cfg.MaxLength > 0 {
		args["x-max-length"] = int64(d.cfg.MaxLength)
	}
	if d.cfg.MessageTTL > 0 {
		args["x-message-ttl"] = time.Duration(d.cfg.MessageTTL).Milliseconds()
	}
	if _, err := ch.QueueDeclare(d.cfg.Queue, !d.cfg.Transient, false, false, false, args); err != nil {
		return fmt.Errorf("notification: declare queue %s: %w", d.cfg.Queue, err)
	}
	missing := d.bind(conn, ch, d.cfg.Exchanges)
	msgs, err := ch.ConsumeWithContext(ctx, d.cfg.Queue, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("notification: consume %s: %w", d.cfg.Queue, err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	retry := time.NewTicker(time.Duration(d.cfg.RetryInterval))
	defer retry.Stop()
	d.log.Info("consuming notifications", "exchanges", d.cfg.Exchanges, "missing_exchanges", missing)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-closed:
			if e == nil {
				return errors.New("notification: connection closed")
			}
			return fmt.Errorf("notification: connection closed: %w", e)
		case <-retry.C:
			if len(missing) > 0 {
				missing = d.bind(conn, ch, missing)
			}
		case m, ok := <-msgs:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return errors.New("notification: the broker cancelled the consumer")
			}
			d.handle(m, deliver)
		}
	}
}

// bind declares each exchange passively (on a channel of its own, since a
// failed passive declaration closes the channel) and binds the queue to
// those that exist. It returns the exchanges still missing.
func (d *Driver) bind(conn *amqp.Connection, ch *amqp.Channel, exchanges []string) (missing []string) {
	for _, x := range exchanges {
		probe, err := conn.Channel()
		if err != nil {
			return append(missing, x)
		}
		err = probe.ExchangeDeclarePassive(x, amqp.ExchangeTopic, false, false, false, false, nil)
		if err != nil {
			missing = append(missing, x)
			d.log.Debug("exchange not there yet; trying again later", "exchange", x, "err", err)
			continue // the failed declaration closed probe
		}
		_ = probe.Close()
		if err := ch.QueueBind(d.cfg.Queue, d.cfg.RoutingKey, x, false, nil); err != nil {
			missing = append(missing, x)
			d.log.Warn("could not bind the queue; trying again later", "exchange", x, "err", err)
			continue
		}
		d.log.Info("bound to exchange", "exchange", x, "routing_key", d.cfg.RoutingKey)
	}
	return missing
}

// handle turns one message into measurements and hands them over.
func (d *Driver) handle(m amqp.Delivery, deliver driver.Deliver) {
	d.c.consumed.Add(1)
	if m.Redelivered {
		d.c.redelivered.Add(1)
	}
	n, err := Decode(m.Body)
	if err != nil {
		et, _ := n["event_type"].(string)
		id, _ := n["message_id"].(string)
		d.c.rejected.Add(1)
		d.log.Error("malformed notification; rejected", "event_type", et, "message_id", id,
			"amqp_message_id", m.MessageId, "bytes", len(m.Body), "err", err)
		if err := m.Reject(false); err != nil {
			d.log.Debug("reject failed; the broker gives the message again", "err", err)
		}
		return
	}
	et, _ := n["event_type"].(string)
	id, _ := n["message_id"].(string)
	if m.Redelivered && id != "" && d.seen.has(id) {
		d.c.duplicates.Add(1)
		d.log.Info("redelivered notification already durable; acknowledged, not delivered again",
			"event_type", et, "message_id", id)
		d.ack(m)
		return
	}
	ms, matched, err := d.defs.Measure(n, nil)
	if err != nil {
		d.c.incomplete.Add(1)
		d.log.Warn("notification lacks what a meter definition needs; that meter skipped",
			"event_type", et, "message_id", id, "err", err)
	}
	if matched == 0 {
		d.c.unmatched.Add(1)
	}
	ms = d.valid(ms, et, id)
	if len(ms) == 0 {
		d.ack(m)
		return
	}
	d.c.measurements.Add(uint64(len(ms)))
	deliver(driver.Delivery{Measurements: ms, Key: id, Ack: func(err error) {
		if err == nil {
			if id != "" {
				d.seen.add(id)
			}
			d.ack(m)
			return
		}
		d.c.requeued.Add(1)
		d.log.Warn("measurements not made durable; the notification goes back to the queue",
			"event_type", et, "message_id", id, "in", time.Duration(d.cfg.RetryInterval), "err", err)
		// Given back after RetryInterval, not at once: an agent that cannot
		// store now would get it straight back, in a tight loop. Until then
		// it holds one prefetch slot.
		time.AfterFunc(time.Duration(d.cfg.RetryInterval), func() {
			if err := m.Nack(false, true); err != nil {
				d.log.Debug("nack failed; the broker gives the message again once the channel is gone", "err", err)
			}
		})
	}})
}

// valid drops, counts and logs the measurements that would fail
// meter.Validate (an over-long id from the message, say): the agent would
// drop them anyway, and a redelivery could not mend them.
func (d *Driver) valid(ms []meter.Measurement, eventType, id string) []meter.Measurement {
	now := time.Now()
	return slices.DeleteFunc(ms, func(m meter.Measurement) bool {
		c := m // validate as the agent will, with Host and Time filled in
		if c.Host == "" {
			c.Host = "agent"
		}
		if c.Time.IsZero() {
			c.Time = now
		}
		err := c.Validate()
		if err != nil {
			d.c.invalid.Add(1)
			d.log.Warn("notification makes an invalid measurement; dropped", "event_type", eventType, "message_id", id,
				"meter", m.Name, "err", err)
		}
		return err != nil
	})
}

func (d *Driver) ack(m amqp.Delivery) {
	if err := m.Ack(false); err != nil {
		d.c.ackFailed.Add(1)
		d.log.Debug("ack failed; the broker will redeliver the message", "err", err)
		return
	}
	d.c.acked.Add(1)
}

// redact hides a URL's password.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// recent is a window of the message ids last made durable.
type recent struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string
	next int
}

func (r *recent) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[id]; ok {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.ids, old)
	}
	r.ring[r.next] = id
	r.ids[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}

func (r *recent) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[id]
	return ok
}
