package riemann

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	riemannpb "github.com/riemann/riemann-go-client/proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/option"
	"github.com/meterkit/meter/sink"
)

// Defaults for the options.
const (
	DefaultPort        = "5555"
	DefaultBatchSize   = 1000
	DefaultTTL         = 60 * time.Second
	DefaultState       = "ok"
	DefaultTimeout     = 10 * time.Second
	DefaultDialTimeout = 5 * time.Second
	// DefaultReceiptTTL is how long the server keeps a receipt
	// (WithReceipts(0)): longer than a publisher usually stays down.
	DefaultReceiptTTL = 10 * time.Minute
	// MaxDatagram is the largest UDP datagram the sink sends, and the
	// largest a Riemann server accepts (16 KiB).
	MaxDatagram = 16384
	// maxReply bounds the reply the sink reads to a send; a reply is a few
	// bytes, so a larger length means the stream is out of step.
	maxReply = 1 << 20
)

// NoTTL, given to WithTTL, leaves the ttl field out of events whose
// measurement has no LabelTTL label, so that the server applies its own
// default.
const NoTTL time.Duration = -1

// ErrClosed is sink.ErrClosed, which Write wraps after Close.
//
// Deprecated: use sink.ErrClosed.
var ErrClosed = sink.ErrClosed

// RefusedError is the error (wrapped in sink.Permanent) that Write returns
// when the server answered a Msg with ok=false: it received the events and
// refused them, so sending them again cannot help.
type RefusedError struct {
	Addr   string // the server
	Events int    // how many events the refused Msg carried
	Reason string // the server's error text
}

// Error says how many events which server refused, and why.
func (e *RefusedError) Error() string {
	return "riemann: send " + strconv.Itoa(e.Events) + " events to " + e.Addr + ": server refused them: " + e.Reason
}

type config struct {
	network     string // "tcp" or "udp"
	tls         *tls.Config
	host        string
	hostSet     bool
	state       string
	ttl         time.Duration // NoTTL: leave the field out
	tags        []string
	batch       int
	timeout     time.Duration
	dialTimeout time.Duration
	receipts    time.Duration // ttl of receipt events; 0: no receipts
}

// Option configures a Sink made by New.
type Option func(*config) error

// WithTLS makes the sink speak TLS over TCP with the given configuration
// (cloned). When c.ServerName is empty, the host part of the address is
// used, as tls.Dial does. Put a client certificate in c.Certificates and the
// server's CA in c.RootCAs.
func WithTLS(c *tls.Config) Option {
	return func(cfg *config) error {
		if c == nil {
			return errors.New("WithTLS: nil *tls.Config")
		}
		cfg.tls = c.Clone()
		return nil
	}
}

// WithUDP makes the sink send datagrams of at most MaxDatagram bytes over
// UDP, which Riemann never acknowledges: a lost datagram goes unnoticed.
func WithUDP() Option {
	return func(cfg *config) error { cfg.network = "udp"; return nil }
}

// WithTTL sets the ttl of events whose measurement has no LabelTTL label.
// Zero means DefaultTTL (60 s); NoTTL leaves the field out, so the server
// applies its own default; any other negative duration makes New fail. The
// TTL is sent as float seconds, fractions included.
func WithTTL(d time.Duration) Option {
	return func(cfg *config) error {
		if d < 0 && d != NoTTL {
			return fmt.Errorf("WithTTL: negative duration %v (NoTTL leaves the ttl out)", d)
		}
		cfg.ttl = cmp.Or(d, DefaultTTL)
		return nil
	}
}

// WithTags sets the tags of every event.
func WithTags(tags ...string) Option {
	return func(cfg *config) error { cfg.tags = slices.Clone(tags); return nil }
}

// WithDefaultHost sets the host of events whose measurement has none
// (os.Hostname() otherwise).
func WithDefaultHost(host string) Option {
	return func(cfg *config) error { cfg.host, cfg.hostSet = host, true; return nil }
}

// WithState sets the state of events whose measurement has neither a
// LabelState nor a meter.StateLabel label (DefaultState otherwise). An empty
// state leaves the field out.
func WithState(state string) Option {
	return func(cfg *config) error { cfg.state = state; return nil }
}

// WithBatchSize sets the largest number of events sent in one Msg; Write
// splits larger batches. Zero means DefaultBatchSize (1000); a negative size
// makes New fail.
func WithBatchSize(n int) Option {
	return func(cfg *config) error {
		return option.Set(&cfg.batch, "WithBatchSize", n, DefaultBatchSize)
	}
}

// WithTimeout bounds each exchange with the server: writing one Msg and
// reading its reply. Zero means DefaultTimeout (10 s); a negative duration
// makes New fail. The deadline of the ctx given to Write applies as well.
func WithTimeout(d time.Duration) Option {
	return func(cfg *config) error {
		return option.Set(&cfg.timeout, "WithTimeout", d, DefaultTimeout)
	}
}

// WithReceipts makes the sink leave a receipt event in the server's index
// with every Msg it sends for a named batch (see sink.ReceiptKeeper), kept for
// ttl, so that a publisher restarted after a crash, or one whose write timed
// out, can ask how much of the batch the server already took and send only
// the rest. See "Receipts" in the package documentation for what the server
// must do. Not over UDP. A zero ttl means DefaultReceiptTTL (10 min); a
// negative one makes New fail.
func WithReceipts(ttl time.Duration) Option {
	return func(cfg *config) error {
		return option.Set(&cfg.receipts, "WithReceipts", ttl, DefaultReceiptTTL)
	}
}

// WithDialTimeout bounds connecting, TLS handshake included. Zero means
// DefaultDialTimeout (5 s); a negative duration makes New fail.
func WithDialTimeout(d time.Duration) Option {
	return func(cfg *config) error {
		return option.Set(&cfg.dialTimeout, "WithDialTimeout", d, DefaultDialTimeout)
	}
}

// Sink writes measurements to a Riemann server as events. Make one with New
// (or sink.Open with a riemann:// URL). Like every sink.Sink, it is not safe
// for concurrent use: Write is never called concurrently.
type Sink struct {
	addr    string
	network string // "tcp", "tls" or "udp", for messages
	cfg     config
	enc     encoder

	conn   net.Conn
	closed bool

	msg     []byte // the Msg being built; for TCP, after a 4-byte length
	idx     []int  // indexes into the batch of the events in msg
	spare   []byte // an event moving to the next datagram
	reply   []byte
	replyPB riemannpb.Msg
}

// New returns a Sink that sends to the Riemann server at addr ("host:port";
// the port defaults to 5555). It does no I/O: the sink connects on the first
// Write, and again on the Write after a connection failed, so a server that
// is down when the program starts, or restarts later, costs retries and not
// a broken sink.
func New(addr string, opts ...Option) (*Sink, error) {
	cfg := config{
		network:     "tcp",
		state:       DefaultState,
		ttl:         DefaultTTL,
		batch:       DefaultBatchSize,
		timeout:     DefaultTimeout,
		dialTimeout: DefaultDialTimeout,
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("riemann: %w", err)
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil { // no port: the default one
		host, port = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), DefaultPort
	}
	if host == "" {
		return nil, fmt.Errorf("riemann: bad address %q: no host", addr)
	}
	addr = net.JoinHostPort(host, port)
	s := &Sink{addr: addr, network: cfg.network}
	if cfg.receipts > 0 && cfg.network == "udp" {
		return nil, errors.New("riemann: WithReceipts needs TCP: Riemann answers neither sends nor queries over UDP")
	}
	if cfg.tls != nil {
		if cfg.network == "udp" {
			return nil, errors.New("riemann: WithTLS and WithUDP exclude each other")
		}
		if cfg.tls.ServerName == "" {
			cfg.tls.ServerName = host
		}
		s.network = "tls"
	}
	if !cfg.hostSet {
		if cfg.host, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("riemann: default host: %w (use WithDefaultHost)", err)
		}
	}
	s.cfg = cfg
	s.enc = encoder{
		host:  cfg.host,
		state: cfg.state,
		ttl:   float32(max(cfg.ttl, 0).Seconds()),
		noTTL: cfg.ttl == NoTTL,
		tags:  cfg.tags,
	}
	return s, nil
}

// Addr returns the server address the sink sends to, with its port.
func (s *Sink) Addr() string { return s.addr }

// Write sends batch as events, in Msgs of at most the batch size (and, over
// UDP, of at most MaxDatagram bytes), and waits for the server to
// acknowledge each Msg (not over UDP).
//
// It returns nil when the server accepted every event; a *RefusedError
// wrapped in sink.Permanent when the server refused them all (ok=false);
// a *sink.PartialError naming the measurements that were refused or could
// not be encoded (a bad LabelTTL, an event too big for a datagram) when the
// others were accepted; and a retryable error when the connection failed:
// then the connection is closed, the next Write dials again, and the whole
// batch should be sent again (Riemann keeps the latest event per host and
// service, so a repeat is harmless).
func (s *Sink) Write(ctx context.Context, batch []meter.Measurement) error {
	return s.write(ctx, nil, 0, batch)
}

// WriteFrom is Write for batch id, holding its measurements from position
// from on. With WithReceipts, every Msg it sends ends with a receipt event
// saying how far the server holds the batch; without, it is Write.
func (s *Sink) WriteFrom(ctx context.Context, id sink.BatchID, from int, batch []meter.Measurement) error {
	if s.cfg.receipts == 0 {
		return s.write(ctx, nil, 0, batch)
	}
	return s.write(ctx, &id, from, batch)
}

func (s *Sink) write(ctx context.Context, id *sink.BatchID, from int, batch []meter.Measurement) error {
	if s.closed {
		return fmt.Errorf("riemann: write to %s after Close: %w", s.addr, sink.ErrClosed)
	}
	if len(batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return s.errorf(len(batch), "%w", err)
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return s.errorf(len(batch), "%w", err)
		}
	}
	defer s.guard(ctx)()

	var (
		rejected []int
		errs     []error
	)
	reject := func(idx []int, err error) {
		rejected = append(rejected, idx...)
		if len(errs) < 10 {
			errs = append(errs, err)
		} else if len(errs) == 10 {
			errs = append(errs, errors.New("riemann: more errors left out"))
		}
	}
	s.reset()
	for i := range batch {
		n := len(s.msg)
		var err error
		s.msg, err = s.enc.appendEvent(s.msg, &batch[i])
		if err != nil {
			reject([]int{i}, fmt.Errorf("riemann: measurement %d (%s): %w", i, batch[i].Name, err))
			continue
		}
		if s.network == "udp" && len(s.msg) > MaxDatagram {
			if evLen := len(s.msg) - n; evLen > MaxDatagram {
				reject([]int{i}, fmt.Errorf("riemann: measurement %d (%s): event of %d bytes does not fit in a datagram of %d",
					i, batch[i].Name, evLen, MaxDatagram))
				s.msg = s.msg[:n]
				continue
			}
			// Send what came before, and start the next datagram with this event.
			s.spare = append(s.spare[:0], s.msg[n:]...)
			s.msg = s.msg[:n]
			if err := s.flush(ctx); err != nil {
				return err
			}
			s.reset()
			s.msg = append(s.msg, s.spare...)
		}
		s.idx = append(s.idx, i)
		if len(s.idx) == s.cfg.batch {
			if id != nil {
				s.msg = s.enc.appendReceipt(s.msg, id, from+i+1, s.cfg.receipts)
			}
			if err := s.flushChecked(ctx, reject); err != nil {
				return err
			}
			s.reset()
		}
	}
	if len(s.idx) > 0 {
		if id != nil {
			s.msg = s.enc.appendReceipt(s.msg, id, from+len(batch), s.cfg.receipts)
		}
		if err := s.flushChecked(ctx, reject); err != nil {
			return err
		}
	}
	switch {
	case len(rejected) == 0:
		return nil
	case len(rejected) == len(batch):
		return sink.Permanent(errors.Join(errs...))
	default:
		slices.Sort(rejected)
		return &sink.PartialError{Rejected: rejected, Err: errors.Join(errs...)}
	}
}

// flushChecked sends the Msg and records a refusal; it returns only errors
// that end the Write (connection failures).
func (s *Sink) flushChecked(ctx context.Context, reject func([]int, error)) error {
	err := s.flush(ctx)
	var ref *RefusedError
	if errors.As(err, &ref) {
		reject(slices.Clone(s.idx), err)
		return nil
	}
	return err
}

// reset starts a new Msg.
func (s *Sink) reset() {
	s.idx = s.idx[:0]
	if s.network == "udp" {
		s.msg = s.msg[:0]
	} else {
		s.msg = append(s.msg[:0], 0, 0, 0, 0)
	}
}

// flush sends the Msg in s.msg, holding the events s.idx, and for TCP reads
// and checks the reply. A connection failure closes the connection.
func (s *Sink) flush(ctx context.Context) error {
	n := len(s.idx)
	if err := s.roundTrip(ctx); err != nil {
		return s.fail(ctx, n, err)
	}
	if s.network != "udp" && !s.replyPB.GetOk() {
		reason := s.replyPB.GetError()
		if reason == "" {
			reason = "ok=false without an error text"
		}
		return &RefusedError{Addr: s.addr, Events: n, Reason: reason}
	}
	return nil
}

// roundTrip sends the Msg in s.msg and, for TCP, reads the reply into
// s.replyPB. Its errors say which step failed; the caller closes the
// connection.
func (s *Sink) roundTrip(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := s.conn.SetDeadline(deadline); err != nil {
		return err
	}
	if s.network == "udp" {
		_, err := s.conn.Write(s.msg)
		return err
	}
	binary.BigEndian.PutUint32(s.msg, uint32(len(s.msg)-4))
	if _, err := s.conn.Write(s.msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(s.conn, hdr[:]); err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size > maxReply {
		return fmt.Errorf("read reply: length %d over the limit of %d (stream out of step?)", size, maxReply)
	}
	s.reply = slices.Grow(s.reply[:0], int(size))[:size]
	if _, err := io.ReadFull(s.conn, s.reply); err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	s.replyPB.Reset()
	if err := proto.Unmarshal(s.reply, protoadapt.MessageV2Of(&s.replyPB)); err != nil {
		return fmt.Errorf("decode reply: %w", err)
	}
	return nil
}

// guard makes the connection give up when ctx ends; the returned func
// undoes that, and drops the connection when ctx ended while it was in use.
func (s *Sink) guard(ctx context.Context) func() {
	conn := s.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return func() {
		if !stop() && s.conn == conn {
			// ctx ended while we used conn: the deadline we set may be
			// overwritten by the callback at any time, so drop the conn.
			s.drop()
		}
	}
}

// Stored implements sink.ReceiptKeeper: it asks the server's index for the
// receipts of batch id and returns the furthest position they vouch for (0
// when there is none). Without WithReceipts it returns sink.ErrNoReceipts.
func (s *Sink) Stored(ctx context.Context, id sink.BatchID) (int, error) {
	if s.closed {
		return 0, fmt.Errorf("riemann: ask %s for receipts after Close: %w", s.addr, sink.ErrClosed)
	}
	if s.cfg.receipts == 0 {
		return 0, sink.ErrNoReceipts
	}
	fail := func(err error) (int, error) {
		s.drop()
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		return 0, fmt.Errorf("riemann: ask %s for the receipts of batch %s: %w", s.addr, id, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return fail(err)
		}
	}
	defer s.guard(ctx)()
	s.reset()
	s.msg = appendReceiptQuery(s.msg, &id)
	if err := s.roundTrip(ctx); err != nil {
		return fail(err)
	}
	if !s.replyPB.GetOk() {
		return 0, fmt.Errorf("riemann: ask %s for the receipts of batch %s: server refused the query: %s",
			s.addr, id, s.replyPB.GetError())
	}
	n := 0
	for _, ev := range s.replyPB.GetEvents() {
		if ev.GetService() != ReceiptService+id.String() || !slices.Contains(ev.GetTags(), ReceiptTag) {
			continue // not ours: the query matched more than asked
		}
		v := ev.GetMetricD()
		if v != math.Trunc(v) || v < 0 || v > math.MaxInt32 {
			return 0, fmt.Errorf("riemann: receipt of batch %s at %s holds %v, not a position", id, s.addr, v)
		}
		n = max(n, int(v))
	}
	return n, nil
}

// fail closes the connection after err and returns err, retryable, with
// ctx's error in front when ctx ended.
func (s *Sink) fail(ctx context.Context, n int, err error) error {
	s.drop()
	cerr := ctx.Err()
	if d, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(d) {
		// The conn's deadline, taken from ctx, may fire before ctx's own timer.
		cerr = context.DeadlineExceeded
	}
	if cerr != nil {
		return s.errorf(n, "%w (%w)", cerr, err)
	}
	return s.errorf(n, "%w", err)
}

func (s *Sink) errorf(n int, format string, args ...any) error {
	return fmt.Errorf("riemann: send %d events to %s: "+format, append([]any{n, s.addr}, args...)...)
}

func (s *Sink) dial(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.dialTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, s.cfg.network, s.addr)
	if err != nil {
		return err
	}
	if s.cfg.tls != nil {
		tc := tls.Client(c, s.cfg.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return fmt.Errorf("tls handshake with %s: %w", s.addr, err)
		}
		c = tc
	}
	s.conn = c
	return nil
}

// drop closes the connection, if any; the next Write dials a new one.
func (s *Sink) drop() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// Close closes the connection. Nothing is buffered between Writes, so there
// is nothing to flush. Close is idempotent; Write fails with an error
// wrapping sink.ErrClosed after it.
func (s *Sink) Close(context.Context) error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	if err != nil {
		return fmt.Errorf("riemann: close connection to %s: %w", s.addr, err)
	}
	return nil
}

var (
	_ sink.NamedWriter   = (*Sink)(nil)
	_ sink.ReceiptKeeper = (*Sink)(nil)
)
