package nanomsg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/req"

	"github.com/meterkit/meter/internal/statslog"
	"github.com/meterkit/meter/transport"
)

// Sender sends envelopes over a REQ socket and waits for each one's ack. It
// implements transport.Sender; Send may be called concurrently.
type Sender struct {
	sock  mangos.Socket
	cfg   config
	addrs string // for errors

	slots chan struct{} // one per request in flight
	done  chan struct{}

	closed atomic.Bool
	mu     sync.Mutex // guards idle and the closing
	idle   []mangos.Context

	bufs sync.Pool // *[]byte, encode buffers

	watch *watch // connections up, and why none is

	sent, acked, retry, rejected, errs atomic.Uint64
	answered                           atomic.Int64  // the largest frame a receiver answered, in bytes
	peer                               atomic.Uint32 // the envelope version the latest ack named (PeerVersion); 0 before any, or none named
}

var (
	_ transport.Sender        = (*Sender)(nil)
	_ transport.FrameLimiter  = (*Sender)(nil)
	_ transport.RawSender     = (*Sender)(nil)
	_ transport.PeerVersioner = (*Sender)(nil)
)

// SenderStats counts what a Sender did since Dial.
type SenderStats struct {
	Sent     uint64 `log:"sent"`     // envelopes handed to the socket
	Acked    uint64 `log:"acked"`    // answered StatusOK
	Retry    uint64 `log:"retry"`    // answered StatusRetry
	Rejected uint64 `log:"rejected"` // answered StatusRejected
	Errors   uint64 `log:"errors"`   // Sends that failed without an answer (encoding, ctx, closed, bad ack)
}

// Dial returns a Sender connected to the receivers at addrs (tcp://host:port,
// tls+tcp://host:port, ipc:///path or inproc://name). With several addresses,
// each request goes to one connected receiver, so the others stand by for
// failover. Connections are made in the background and re-made when they
// break: Dial succeeds when no receiver is up yet, and Sends wait for one.
func Dial(addrs []string, opts ...DialOption) (*Sender, error) {
	if len(addrs) == 0 {
		return nil, errors.New("nanomsg: dial: no address")
	}
	c, err := dialConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &Sender{cfg: c, addrs: strings.Join(addrs, ","),
		slots: make(chan struct{}, c.concurrency),
		done:  make(chan struct{}),
		watch: newWatch(c.reconnMax, max(2*c.reconnMax, time.Second)),
	}
	for _, a := range addrs {
		if err := checkAddr(a, &c); err != nil {
			return nil, fmt.Errorf("nanomsg: dial %s: %w", a, err)
		}
	}
	sock, err := req.NewSocket()
	if err != nil {
		return nil, fmt.Errorf("nanomsg: dial %s: %w", s.addrs, err)
	}
	s.sock = sock
	sock.SetPipeEventHook(s.watch.hook)
	for _, o := range []struct {
		name string
		v    any
	}{
		{mangos.OptionRetryTime, c.resend},
		{mangos.OptionMaxRecvSize, wireLimit(c.maxFrame)},
		{mangos.OptionReconnectTime, c.reconnMin},
		{mangos.OptionMaxReconnectTime, c.reconnMax},
		{mangos.OptionDialAsynch, true},
	} {
		if err := sock.SetOption(o.name, o.v); err != nil {
			_ = sock.Close()
			return nil, fmt.Errorf("nanomsg: dial %s: set %s: %w", s.addrs, o.name, err)
		}
	}
	for _, a := range addrs {
		if err := sock.DialOptions(a, endpointOptions(a, &c, true)); err != nil {
			_ = sock.Close()
			return nil, fmt.Errorf("nanomsg: dial %s: %w", a, err)
		}
	}
	return s, nil
}

// Send encodes env, sends it and waits for the receiver's ack. It returns
// nil when the receiver answered StatusOK, an error wrapping
// transport.ErrRetry or transport.ErrRejected (with the receiver's message)
// when it answered so, ctx's error when ctx ends first, and
// transport.ErrClosed after Close. An envelope over the frame limit is not
// sent: the error wraps transport.ErrTooLarge and is transport.Permanent,
// as is one for an envelope that does not encode.
//
// Until an answer comes, the request is sent again every resend interval
// and whenever its connection breaks, possibly to another receiver. A
// receiver drops the connection, without an answer, on a frame over twice
// its frame limit: when the connection dropped again and again while a
// frame larger than any answered was sent, and no answer came, the error
// wraps transport.ErrTooLarge as well as ctx's error (not permanent: the
// connection may just be flapping).

func (s *Sender) Send(ctx context.Context, env *transport.Envelope) error {
	err := s.send(ctx, env)
	if err != nil && !errors.Is(err, transport.ErrRetry) && !errors.Is(err, transport.ErrRejected) {
		s.errs.Add(1)
	}
	return err
}

func (s *Sender) send(ctx context.Context, env *transport.Envelope) error {
	if s.isClosed() {
		return transport.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nanomsg: send seq %d to %s: %w", env.Seq, s.addrs, err)
	}

	bp := s.getBuf()
	frame, err := transport.AppendEnvelope((*bp)[:0], env)
	if err != nil {
		s.putBuf(bp, frame)
		return transport.Permanent(fmt.Errorf("nanomsg: send seq %d to %s: %w", env.Seq, s.addrs, err))
	}
	err = s.sendFrame(ctx, frame, env.Seq)
	s.putBuf(bp, frame)
	return err
}

// SendRaw sends frame, an envelope's wire encoding whose Seq is seq, as it
// is (transport.RawSender), with the contract of Send.
func (s *Sender) SendRaw(ctx context.Context, frame []byte, seq uint64) error {
	var err error
	switch {
	case s.isClosed():
		err = transport.ErrClosed
	case ctx.Err() != nil:
		err = fmt.Errorf("nanomsg: send seq %d to %s: %w", seq, s.addrs, ctx.Err())
	default:
		err = s.sendFrame(ctx, frame, seq)
	}
	if err != nil && !errors.Is(err, transport.ErrRetry) && !errors.Is(err, transport.ErrRejected) {
		s.errs.Add(1)
	}
	return err
}

// sendFrame sends the encoded envelope frame (Seq seq) and waits for its ack.
func (s *Sender) sendFrame(ctx context.Context, frame []byte, seq uint64) error {
	if len(frame) > s.cfg.maxFrame {
		return transport.Permanent(fmt.Errorf("nanomsg: send seq %d to %s: %w: frame of %d bytes, limit %d",
			seq, s.addrs, transport.ErrTooLarge, len(frame), s.cfg.maxFrame))
	}
	m := mangos.NewMessage(len(frame))
	m.Body = append(m.Body, frame...)

	// Wait for a slot for one more request in flight.
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		m.Free()
		return fmt.Errorf("nanomsg: send seq %d to %s: waiting for a free slot: %w", seq, s.addrs, ctx.Err())
	case <-s.done:
		m.Free()
		return transport.ErrClosed
	}
	defer func() { <-s.slots }()

	mc, err := s.getContext()
	if err != nil {
		m.Free()
		return err
	}
	// A ctx without deadline is honoured by closing the mangos context, which
	// wakes SendMsg or RecvMsg; that context is then discarded.
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = mc.Close() })
	}
	// A Send that starts while no connection is up and waits long finds
	// out why, and the reason is logged without waiting for ctx to end. (A
	// connected Send, the usual one, arms no timer; one whose connection
	// drops finds out why when it fails, through s.why.)
	var watchdog *time.Timer
	if !s.Connected() {
		watchdog = time.AfterFunc(s.watch.delay, func() {
			if !s.isClosed() && !s.Connected() {
				s.notConnected()
			}
		})
	}
	drops := s.watch.detached.Load()
	reply, err := s.roundTrip(ctx, mc, m)
	if watchdog != nil {
		watchdog.Stop()
	}
	drops = s.watch.detached.Load() - drops
	if !stop() || err != nil && !isTimeout(err) {
		_ = mc.Close() // cancelled, closed or broken: do not reuse
	} else {
		s.putContext(mc)
	}
	if err != nil {
		if (ctx.Err() != nil || isTimeout(err)) && drops >= droppedTooLarge && int64(len(frame)) > s.answered.Load() {
			// mangos drops the connection, without an answer, on a frame
			// over the receiver's wire limit (twice its frame limit): the
			// same frame, larger than any answered, lost its connection
			// again and again. Not permanent: the connection may just be
			// flapping, and a single measurement is sent again.
			cause := ctx.Err()
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			return fmt.Errorf("nanomsg: send seq %d to %s: no answer, and the connection dropped %d times while the frame of %d bytes was sent "+
				"(the largest answered had %d): %w for the receiver, likely: %w", seq, s.addrs, drops, len(frame), s.answered.Load(),
				transport.ErrTooLarge, cause)
		}
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("nanomsg: send seq %d to %s: no answer%s: %w", seq, s.addrs, s.why(), ctx.Err())
		case isTimeout(err):
			return fmt.Errorf("nanomsg: send seq %d to %s: no answer%s: %w", seq, s.addrs, s.why(), context.DeadlineExceeded)
		case errors.Is(err, mangos.ErrClosed) || s.isClosed():
			return transport.ErrClosed
		}
		return fmt.Errorf("nanomsg: send seq %d to %s: %w", seq, s.addrs, err)
	}
	for n := int64(len(frame)); ; { // an answer: the receiver read a frame this large
		a := s.answered.Load()
		if n <= a || s.answered.CompareAndSwap(a, n) {
			break
		}
	}
	ack, err := transport.DecodeAck(reply.Body)
	reply.Free()
	if err != nil {
		return fmt.Errorf("nanomsg: ack for seq %d from %s: %w", seq, s.addrs, err)
	}
	// A receiver that cannot read an envelope cannot know its Seq: it
	// rejects it with Seq 0. REQ/REP itself matches answers to requests.
	if ack.Seq != seq && !(ack.Seq == 0 && ack.Status == transport.StatusRejected) {
		return fmt.Errorf("nanomsg: ack from %s: %w: answers seq %d, sent seq %d",
			s.addrs, transport.ErrMalformed, ack.Seq, seq)
	}
	s.peer.Store(ack.Version)
	switch ack.Status {
	case transport.StatusOK:
		s.acked.Add(1)
	case transport.StatusRetry:
		s.retry.Add(1)
	case transport.StatusRejected:
		s.rejected.Add(1)
	}
	if ack.Seq == 0 {
		ack.Seq = seq
	}
	return transport.AckError(ack)
}

// PeerVersion returns the newest envelope version the receiver that sent
// the latest ack reads (transport.PeerVersioner): transport.Version before
// any ack and after one from a receiver of an earlier release, which does
// not say. With several addresses it is that of the latest answer.
func (s *Sender) PeerVersion() uint32 {
	return max(s.peer.Load(), transport.Version)
}

// roundTrip sends m on mc and waits for the reply, within ctx's deadline.
func (s *Sender) roundTrip(ctx context.Context, mc mangos.Context, m *mangos.Message) (*mangos.Message, error) {
	var wait time.Duration // zero: no deadline
	if dl, ok := ctx.Deadline(); ok {
		if wait = time.Until(dl); wait <= 0 {
			m.Free()
			return nil, mangos.ErrSendTimeout
		}
	}
	if err := setDeadlines(mc, wait); err != nil {
		m.Free()
		return nil, err
	}
	if err := mc.SendMsg(m); err != nil {
		m.Free()
		return nil, err
	}
	s.sent.Add(1)
	if dl, ok := ctx.Deadline(); ok {
		if wait = time.Until(dl); wait <= 0 {
			return nil, mangos.ErrRecvTimeout
		}
		if err := mc.SetOption(mangos.OptionRecvDeadline, wait); err != nil {
			return nil, err
		}
	}
	return mc.RecvMsg()
}

func setDeadlines(mc mangos.Context, d time.Duration) error {
	if err := mc.SetOption(mangos.OptionSendDeadline, d); err != nil {
		return err
	}
	return mc.SetOption(mangos.OptionRecvDeadline, d)
}

// droppedTooLarge is how many times the connection must drop while one
// frame is sent, without an answer, for the frame to be deemed too large
// for the receiver.
const droppedTooLarge = 2

func isTimeout(err error) bool {
	return errors.Is(err, mangos.ErrSendTimeout) || errors.Is(err, mangos.ErrRecvTimeout)
}

func (s *Sender) getContext() (mangos.Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, transport.ErrClosed
	}
	if n := len(s.idle); n > 0 {
		mc := s.idle[n-1]
		s.idle = s.idle[:n-1]
		return mc, nil
	}
	mc, err := s.sock.OpenContext()
	if err != nil {
		if errors.Is(err, mangos.ErrClosed) {
			return nil, transport.ErrClosed
		}
		return nil, fmt.Errorf("nanomsg: send to %s: open context: %w", s.addrs, err)
	}
	return mc, nil
}

func (s *Sender) putContext(mc mangos.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		_ = mc.Close()
		return
	}
	s.idle = append(s.idle, mc)
}

func (s *Sender) getBuf() *[]byte {
	if bp, ok := s.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 4096)
	return &b
}

func (s *Sender) putBuf(bp *[]byte, b []byte) {
	if cap(b) > s.cfg.maxFrame*2 {
		return // keep the pool from holding one huge buffer
	}
	*bp = b[:0]
	s.bufs.Put(bp)
}

func (s *Sender) isClosed() bool { return s.closed.Load() }

// Close closes the socket: Sends in flight and later return
// transport.ErrClosed. It is safe to call more than once.
func (s *Sender) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil
	}
	s.closed.Store(true)
	s.idle = nil
	close(s.done)
	s.mu.Unlock()
	err := s.sock.Close()
	s.watch.stop()
	if err != nil && !errors.Is(err, mangos.ErrClosed) {
		return fmt.Errorf("nanomsg: close sender to %s: %w", s.addrs, err)
	}
	return nil
}

// why says, for the error of a Send that got no answer, that no
// connection is up and why, when known.
func (s *Sender) why() string {
	if s.isClosed() || s.Connected() {
		return ""
	}
	if err := s.notConnected(); err != nil {
		return " (not connected: " + err.Error() + ")"
	}
	return " (not connected)"
}

// MaxFrameSize implements transport.FrameLimiter: the largest frame Send
// sends (WithMaxFrameSize).
func (s *Sender) MaxFrameSize() int { return s.cfg.maxFrame }

// Stats returns the Sender's counters.
func (s *Sender) Stats() SenderStats {
	return SenderStats{
		Sent:     s.sent.Load(),
		Acked:    s.acked.Load(),
		Retry:    s.retry.Load(),
		Rejected: s.rejected.Load(),
		Errors:   s.errs.Load(),
	}
}

// LogValue returns the counters with their log keys (the struct tags).
func (s SenderStats) LogValue() slog.Value { return statslog.Value(s) }
