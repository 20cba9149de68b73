package ceilometer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/internal/keystone"
)

// ErrClosed is sink.ErrClosed, which Write wraps after Close.
//
// Deprecated: use sink.ErrClosed.
var ErrClosed = sink.ErrClosed

// NackError says that the broker refused (nacked) notifications, or
// returned them as unroutable (312 NO_ROUTE: no queue is bound, usually
// because the notification agent is not running). Retrying can help.
type NackError struct {
	Broker   string // host:port
	Exchange string
	Key      string
	Nacked   int // notifications the broker nacked
	Returned int // notifications it returned unroutable
	Reason   string
}

func (e *NackError) Error() string {
	msg := "ceilometer: publish to exchange " + strconv.Quote(e.Exchange) + " key " + strconv.Quote(e.Key) + " at " + e.Broker + ": "
	switch {
	case e.Returned > 0 && e.Nacked > 0:
		msg += strconv.Itoa(e.Returned) + " notification(s) unroutable, " + strconv.Itoa(e.Nacked) + " nacked"
	case e.Returned > 0:
		msg += strconv.Itoa(e.Returned) + " notification(s) unroutable (no queue bound: is the notification agent running?)"
	default:
		msg += strconv.Itoa(e.Nacked) + " notification(s) nacked by the broker"
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Notifier is a sink.Sink that publishes measurements as Ceilometer samples
// on the notification bus (RabbitMQ), where Ceilometer's notification agent
// picks them up as if its own polling agents had sent them. Make one with
// NewNotifier; see the package documentation for the mapping.
type Notifier struct {
	cfg    config
	url    string // with credentials: never in an error
	broker string // host:port, for errors
	secret []string
	mp     mapping

	conn      *amqp.Connection
	ch        *amqp.Channel
	connClose chan *amqp.Error
	returns   chan amqp.Return
	closed    bool

	samples []Sample // reused between Writes
	ids     []string // message ids of the notifications in flight
	dcs     []*amqp.DeferredConfirmation
	now     func() time.Time
	newID   func() string // sample message_id; tests replace it
}

// NewNotifier returns a sink that publishes to the broker at amqpURL
// ("amqp://user:pass@host:5672/vhost" or "amqps://..."). It does no I/O:
// the sink connects on the first Write and reconnects on the Write after a
// failure.
func NewNotifier(amqpURL string, opts ...NotifierOption) (*Notifier, error) {
	cfg, err := newConfig(opts, NotifierOption.applyNotifier)
	if err != nil {
		return nil, err
	}
	uri, err := amqp.ParseURI(amqpURL)
	if err != nil {
		// ParseURI's errors do not quote the URL, but be sure.
		return nil, fmt.Errorf("ceilometer: bad AMQP URL: %w", keystone.RedactErr(err, passwordOf(amqpURL)))
	}
	n := &Notifier{
		cfg:    cfg,
		url:    amqpURL,
		broker: uri.Host + ":" + strconv.Itoa(uri.Port),
		mp:     mapping{source: cfg.source},
		now:    time.Now,
		newID:  newUUID,
	}
	if uri.Password != "" {
		n.secret = append(n.secret, uri.Password)
	}
	if len(cfg.secret) > 0 {
		n.secret = append(n.secret, string(cfg.secret))
	}
	return n, nil
}

func passwordOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// Write publishes batch as telemetry.polling notifications of at most
// WithBatchSize samples each, and returns nil only when the broker
// confirmed every one of them (publisher confirms) and none came back
// unroutable. Measurements with neither ResourceID nor Host are rejected
// (a *sink.PartialError); any other failure means "write the whole batch
// again", which may deliver some samples twice.
func (n *Notifier) Write(ctx context.Context, batch []meter.Measurement) error {
	return n.write(ctx, batch, func(int) string { return n.newID() })
}

// WriteFrom is Write for batch id, whose measurements from position from
// on batch holds: each sample's message_id is then a name-based UUID
// (version 5) of id and the measurement's position, so a batch written
// again, after a confirmation that never came, carries the same
// message_ids, and a consumer can drop the repeats.
func (n *Notifier) WriteFrom(ctx context.Context, id sink.BatchID, from int, batch []meter.Measurement) error {
	prefix := id.String() + "/"
	return n.write(ctx, batch, func(i int) string { return sampleID(prefix, from+i) })
}

// The Notifier is a sink.NamedWriter but keeps no receipts (it is no
// sink.ReceiptKeeper): a broker cannot be asked what it delivered. A batch
// in doubt is published again, with the same message_ids (WriteFrom).
var _ sink.NamedWriter = (*Notifier)(nil)

func (n *Notifier) write(ctx context.Context, batch []meter.Measurement, idOf func(int) string) error {
	if n.closed {
		return fmt.Errorf("ceilometer: publish to %s after Close: %w", n.broker, sink.ErrClosed)
	}
	if len(batch) == 0 {
		return nil
	}
	var rejected []int
	var why error
	n.samples = n.samples[:0]
	for i := range batch {
		m := &batch[i]
		if err := m.Validate(); err != nil {
			rejected, why = append(rejected, i), err
			continue
		}
		s, err := n.mp.toSample(m, idOf(i))
		if err != nil {
			rejected, why = append(rejected, i), fmt.Errorf("measurement %d (%s): %w", i, m.Name, err)
			continue
		}
		if len(n.cfg.secret) > 0 {
			s.MessageSignature = Sign(&s, n.cfg.secret)
		}
		n.samples = append(n.samples, s)
	}
	defer clear(n.samples) // keep no reference to the caller's labels
	if len(n.samples) > 0 {
		ctx, cancel := context.WithTimeout(ctx, n.cfg.timeout)
		defer cancel()
		if err := n.publish(ctx, n.samples); err != nil {
			return keystone.RedactErr(err, n.secret...)
		}
	}
	if len(rejected) == 0 {
		return nil
	}
	perr := fmt.Errorf("ceilometer: %d of %d measurements not publishable: %w", len(rejected), len(batch), why)
	if len(rejected) == len(batch) {
		return sink.Permanent(perr)
	}
	return &sink.PartialError{Rejected: rejected, Err: perr}
}

// publish sends samples in notifications, at most maxInFlight unconfirmed
// at a time.
func (n *Notifier) publish(ctx context.Context, samples []Sample) error {
	if err := n.connect(ctx); err != nil {
		return err
	}
	var bodies [][]byte
	for start := 0; start < len(samples); start += n.cfg.batch {
		end := min(start+n.cfg.batch, len(samples))
		id := newUUID()
		body, err := encodeNotification(id, n.cfg.publisherID, n.now(), samples[start:end])
		if err != nil {
			return sink.Permanent(fmt.Errorf("ceilometer: encode notification: %w", err))
		}
		bodies = append(bodies, body)
		n.ids = append(n.ids, id)
	}
	defer func() { n.ids = n.ids[:0] }()
	for start := 0; start < len(bodies); start += maxInFlight {
		end := min(start+maxInFlight, len(bodies))
		if err := n.publishWindow(ctx, bodies[start:end], n.ids[start:end]); err != nil {
			return err
		}
	}
	return nil
}

func (n *Notifier) publishWindow(ctx context.Context, bodies [][]byte, ids []string) error {
	n.dcs = n.dcs[:0]
	defer func() { clear(n.dcs); n.dcs = n.dcs[:0] }()
	mode := amqp.Transient
	if n.cfg.durable {
		mode = amqp.Persistent
	}
	for i, body := range bodies {
		dc, err := n.ch.PublishWithDeferredConfirmWithContext(ctx, n.cfg.exchange, n.cfg.routingKey, true, false, amqp.Publishing{
			ContentType:     "application/json",
			ContentEncoding: "utf-8",
			DeliveryMode:    mode,
			MessageId:       ids[i],
			Timestamp:       n.now(),
			Body:            body,
		})
		if err != nil {
			n.reset(ctx)
			return fmt.Errorf("ceilometer: publish to exchange %q at %s: %w", n.cfg.exchange, n.broker, err)
		}
		n.dcs = append(n.dcs, dc)
	}
	nacked := 0
	for _, dc := range n.dcs {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			// The state of the channel is unknown: start afresh.
			n.reset(ctx)
			return fmt.Errorf("ceilometer: wait for the confirms of %d notification(s) from %s: %w", len(bodies), n.broker, err)
		}
		if !ok {
			nacked++
		}
	}
	// The broker sends basic.return before the basic.ack of the same
	// message, and the client hands it to n.returns before it processes the
	// ack, so every return of this window is in the buffer by now.
	returned, reason := 0, ""
drain:
	for {
		select {
		case r := <-n.returns:
			returned++
			reason = strconv.Itoa(int(r.ReplyCode)) + " " + r.ReplyText
		default:
			break drain
		}
	}
	if nacked == 0 && returned == 0 {
		return nil
	}
	if nacked > 0 && n.ch.IsClosed() {
		// A connection or channel that died nacks everything pending.
		reason = "connection lost"
		if err := n.lostReason(); err != "" {
			reason += ": " + err
		}
		n.reset(ctx)
	}
	return &NackError{Broker: n.broker, Exchange: n.cfg.exchange, Key: n.cfg.routingKey, Nacked: nacked, Returned: returned, Reason: reason}
}

func (n *Notifier) lostReason() string {
	select {
	case e, ok := <-n.connClose:
		if ok && e != nil {
			return e.Error()
		}
	default:
	}
	return ""
}

// connect dials the broker unless the sink holds a live channel.
func (n *Notifier) connect(ctx context.Context) error {
	if n.ch != nil && !n.ch.IsClosed() && !n.conn.IsClosed() {
		return nil
	}
	n.reset(ctx)
	if err := ctx.Err(); err != nil {
		return err
	}
	dialTimeout := n.cfg.dialTimeout
	if dl, ok := ctx.Deadline(); ok {
		dialTimeout = min(dialTimeout, time.Until(dl))
	}
	conn, err := amqp.DialConfig(n.url, amqp.Config{
		Heartbeat:       10 * time.Second,
		Locale:          "en_US",
		TLSClientConfig: n.cfg.tls,
		Dial:            amqp.DefaultDial(dialTimeout),
		Properties:      amqp.Table{"product": "meterkit ceilometer sink", "connection_name": "meterkit"},
	})
	if err != nil {
		return fmt.Errorf("ceilometer: connect to %s: %w", n.broker, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("ceilometer: open channel on %s: %w", n.broker, err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = conn.Close()
		return fmt.Errorf("ceilometer: enable publisher confirms on %s: %w", n.broker, err)
	}
	if err := ch.ExchangeDeclare(n.cfg.exchange, "topic", n.cfg.durable, false, false, false, nil); err != nil {
		_ = conn.Close()
		return fmt.Errorf("ceilometer: declare topic exchange %q (durable=%t) on %s: %w (it must match how Ceilometer declares it: durable=false unless amqp_durable_queues)",
			n.cfg.exchange, n.cfg.durable, n.broker, err)
	}
	n.conn, n.ch = conn, ch
	n.connClose = conn.NotifyClose(make(chan *amqp.Error, 1))
	n.returns = ch.NotifyReturn(make(chan amqp.Return, maxInFlight+1))
	return nil
}

// reset drops the connection, so that the next Write dials again. It waits
// for the broker's close-ok at most a second, and not past ctx's deadline:
// a broker that stopped answering must not hold the Write past its ctx.
func (n *Notifier) reset(ctx context.Context) {
	if n.conn != nil {
		deadline := time.Now().Add(time.Second)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		if ctx.Err() != nil {
			deadline = time.Now()
		}
		_ = n.conn.CloseDeadline(deadline)
	}
	n.conn, n.ch, n.connClose, n.returns = nil, nil, nil, nil
}

// Close closes the connection to the broker. It is safe to call more than
// once; Write fails with an error wrapping sink.ErrClosed afterwards.
func (n *Notifier) Close(ctx context.Context) error {
	if n.closed {
		return nil
	}
	n.closed = true
	if n.conn == nil {
		return nil
	}
	deadline := time.Now().Add(5 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	err := n.conn.CloseDeadline(deadline)
	n.conn, n.ch = nil, nil
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("ceilometer: close connection to %s: %w", n.broker, err)
	}
	return nil
}

var _ sink.Sink = (*Notifier)(nil)
