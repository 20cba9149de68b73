package seal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/statslog"
	"github.com/meterkit/meter/transport"
)

// Sender seals every envelope before handing it to the transport.Sender it
// wraps. It implements transport.Sender; make one with NewSender.
//
// It seals anew at each Send, so that the sealing time the receiver checks
// is that of the attempt, not of the batch: call Send again to resend. The
// caller's envelope is not changed. An envelope that already holds Sealed
// data is passed on as it is, for the receiver to check like any other.
//
// Its MaxFrameSize is the inner Sender's less the sealing overhead, so that
// an envelope within it makes a sealed frame within the inner limit. It
// offers no other capability of the inner Sender that changes the frame
// (such as sending bytes encoded beforehand, which would bypass sealing);
// those that only read are found through Unwrap (see transport.As).
type Sender struct {
	inner  transport.Sender
	sealer atomic.Pointer[Sealer] // replaced by SetSealer
	bufs   sync.Pool              // *sealBuf
}

var (
	_ transport.Sender       = (*Sender)(nil)
	_ transport.FrameLimiter = (*Sender)(nil)
)

// NewSender returns a Sender that seals with s and sends through inner. It
// owns inner: Close closes it. It panics if inner or s is nil.
func NewSender(inner transport.Sender, s *Sealer) *Sender {
	if inner == nil || s == nil {
		panic("seal: NewSender needs an inner transport.Sender and a Sealer")
	}
	snd := &Sender{inner: inner}
	snd.sealer.Store(s)
	return snd
}

// SetSealer makes the Sender seal with s from its next Send on, for a key
// rotated while it runs (meterctl key rotate, then the agent reloads its key
// file). s must seal for the same tenant. The sealing overhead, and so
// MaxFrameSize, changes with the length of the key's id: a caller that cut
// its batches to the older limit may see transport.ErrTooLarge for one
// that no longer fits (the agent splits it).
func (s *Sender) SetSealer(sl *Sealer) error {
	if sl == nil {
		return errors.New("seal: SetSealer: nil Sealer")
	}
	if old := s.sealer.Load(); old.Tenant() != sl.Tenant() {
		return fmt.Errorf("seal: SetSealer: the Sealer is for tenant %q, the Sender seals for %q", sl.Tenant(), old.Tenant())
	}
	s.sealer.Store(sl)
	return nil
}

// KeyID returns the id of the key the Sender seals with now.
func (s *Sender) KeyID() string { return s.sealer.Load().KeyID() }

// Send seals env and sends it through the inner Sender, with that Sender's
// result. An envelope that cannot be sealed (another tenant's, a time that
// cannot be encoded) is not sent: the error wraps transport.ErrRejected
// and is transport.Permanent, since sending it again cannot succeed.
func (s *Sender) Send(ctx context.Context, env *transport.Envelope) error {
	if len(env.Sealed) > 0 {
		return s.inner.Send(ctx, env)
	}
	sb, _ := s.bufs.Get().(*sealBuf)
	if sb == nil {
		sb = new(sealBuf)
	}
	var err error
	sb.env, sb.buf, err = s.sealer.Load().Seal(sb.buf[:0], env)
	if err == nil {
		err = s.inner.Send(ctx, &sb.env)
	} else {
		err = transport.Permanent(fmt.Errorf("%w: %w", transport.ErrRejected, err))
	}
	// The inner Sender does not use the envelope after Send returns.
	sb.env = transport.Envelope{}
	if cap(sb.buf) <= 64<<20 { // keep the pool from holding a huge buffer
		s.bufs.Put(sb)
	}
	return err
}

// sealBuf is the memory of one sealed envelope.
type sealBuf struct {
	env transport.Envelope
	buf []byte
}

// MaxFrameSize implements transport.FrameLimiter: the inner Sender's limit
// less the sealing overhead, or 0 (no limit) when the inner Sender reports
// none.
func (s *Sender) MaxFrameSize() int {
	fl, ok := s.inner.(transport.FrameLimiter)
	if !ok {
		return 0
	}
	n := fl.MaxFrameSize()
	if n <= 0 {
		return 0
	}
	return max(n-s.sealer.Load().overhead(), 1)
}

// Tenant returns the tenant the Sender seals for: an envelope of another
// tenant cannot be sent through it. A read-only capability, found with
// transport.As[interface{ Tenant() string }] (package agent does, to refuse
// an agent configured for another tenant).
func (s *Sender) Tenant() string { return s.sealer.Load().Tenant() }

// Close closes the inner Sender. It is safe to call more than once if the
// inner Sender's Close is.
func (s *Sender) Close() error { return s.inner.Close() }

// Unwrap returns the inner Sender, for transport.As.
func (s *Sender) Unwrap() transport.Sender { return s.inner }

// overhead bounds how many bytes sealing adds to the frame of an envelope:
// the tag, the Auth field, the two field headers, a tenant the Sealer fills
// in, and a longer length prefix.
func (s *Sealer) overhead() int {
	auth := 2 + len(s.keyID) + NonceSize + 8 + CheckSize
	sealed := 1 + binaryVarintMax + TagSize
	tenant := 1 + protowire.SizeVarint(uint64(len(s.tenant))) + len(s.tenant)
	return 1 + protowire.SizeVarint(uint64(auth)) + auth + sealed + tenant
}

// binaryVarintMax is the longest length prefix of a field under 32 GiB.
const binaryVarintMax = 5

// Receiver opens every envelope the transport.Receiver it wraps hands out,
// and answers itself those it refuses. It implements transport.Receiver;
// make one with NewReceiver.
//
// A Delivery it returns holds the decrypted measurements, with Sealed and
// Auth nil: the envelope as its agent gave it to the Sealer. It checks
// authenticity and the sealing-time window only (see Opener.Open); it does
// not remember what it opened, so a replay within the window is handed out
// again, for the publisher's de-duplication by (tenant, agent, seq) to
// answer "duplicate" without writing it twice. An envelope whose header is
// not authenticated never reaches Receive (unless the Opener allows
// unsealed ones).
//
// Refused envelopes are answered by the Receiver, counted in Stats, and
// logged with tenant, agent, seq and reason, never key material: one sealed
// outside the window is answered StatusRetry, so that its agent seals it
// again with a fresh time; one whose key store failed too; the others
// StatusRejected, with transport.ReasonRefused when the configuration
// refuses the sender (unsealed, unknown tenant, wrong key: the agent keeps
// its batches and reports), ReasonTooLarge for a payload over a limit, and
// ReasonBadBatch for the batch's own faults (tampered, a payload that does
// not decode).
//
// Capabilities of the inner Receiver that only read (its Stats, its Addr)
// are found through Unwrap (see transport.As).
type Receiver struct {
	inner  transport.Receiver
	opener *Opener
	cfg    receiverConfig
	slots  sync.Pool // *slot

	opened, passed                              atomic.Uint64
	unsealed, unknownTenant, wrongKey, tampered atomic.Uint64
	outOfWindow, malformed, tooLarge, keyStore  atomic.Uint64
	ackErrors                                   atomic.Uint64
}

var _ transport.Receiver = (*Receiver)(nil)

// ReceiverStats counts what a Receiver did since NewReceiver. Frames the
// inner transport could not decode are counted by it, not here.
type ReceiverStats struct {
	Opened uint64 `log:"opened"` // sealed envelopes opened and handed out
	Passed uint64 `log:"passed"` // unsealed envelopes handed out unchecked (AllowUnsealed)

	// Refused envelopes, by reason. OutOfWindow and KeyStore ones are
	// answered StatusRetry, the others StatusRejected.
	Unsealed      uint64 `log:"unsealed"`       // not sealed, and the Opener requires it
	UnknownTenant uint64 `log:"unknown_tenant"` // no keys for the tenant
	WrongKey      uint64 `log:"wrong_key"`      // key id unknown to the tenant, or another key
	Tampered      uint64 `log:"tampered"`       // failed authentication, or malformed auth data
	OutOfWindow   uint64 `log:"out_of_window"`  // sealed too long ago or too far ahead
	Malformed     uint64 `log:"malformed"`      // authenticated, but the payload does not decode
	TooLarge      uint64 `log:"too_large"`      // authenticated, but the payload is over a limit
	KeyStore      uint64 `log:"key_store"`      // the key store failed: not the envelope's fault
	AckErrors     uint64 `log:"ack_errors"`     // refusals that could not be answered
}

// ReceiverOption configures NewReceiver.
type ReceiverOption func(*receiverConfig)

type receiverConfig struct {
	limits transport.Limits
	logger *slog.Logger
}

// WithLimits bounds what an opened payload may hold, as a transport's
// decoder bounds a frame (transport.DefaultLimits otherwise).
func WithLimits(l transport.Limits) ReceiverOption {
	return func(c *receiverConfig) { c.limits = l }
}

// WithLogger sets where the Receiver reports the envelopes it refuses
// (slog.Default otherwise).
func WithLogger(l *slog.Logger) ReceiverOption {
	return func(c *receiverConfig) {
		if l != nil {
			c.logger = l
		}
	}
}

// NewReceiver returns a Receiver that opens with o what inner hands out.
// It owns inner: Close closes it. It panics if inner or o is nil.
func NewReceiver(inner transport.Receiver, o *Opener, opts ...ReceiverOption) *Receiver {
	if inner == nil || o == nil {
		panic("seal: NewReceiver needs an inner transport.Receiver and an Opener")
	}
	c := receiverConfig{limits: transport.DefaultLimits(), logger: slog.Default()}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	return &Receiver{inner: inner, opener: o, cfg: c}
}

// slot is the memory of one opened envelope: its Delivery, which the
// caller acknowledges, the decoder its measurements live in, and the
// inner Delivery the acknowledgement goes to.
type slot struct {
	r     *Receiver
	d     transport.Delivery
	dec   transport.Decoder
	ms    []meter.Measurement // the decoder's measurements, kept across envelopes
	inner *transport.Delivery
}

// Reply implements transport.Replier: the acknowledgement goes to the
// inner Delivery, and the slot's memory is reused.
func (sl *slot) Reply(_ *transport.Delivery, a transport.Ack) error {
	inner := sl.inner
	sl.inner = nil
	err := inner.Ack(a)
	sl.r.slots.Put(sl)
	return err
}

// Receive returns the next envelope that opens. It blocks until one
// arrives, ctx ends (ctx's error) or the Receiver is closed
// (transport.ErrClosed); envelopes refused meanwhile are answered and do
// not return. The Delivery and its measurements stay valid until its Ack.
func (r *Receiver) Receive(ctx context.Context) (*transport.Delivery, error) {
	for {
		d, err := r.inner.Receive(ctx)
		if err != nil {
			return nil, err
		}
		sl, _ := r.slots.Get().(*slot)
		if sl == nil {
			sl = &slot{r: r, dec: transport.Decoder{Limits: r.cfg.limits}}
		}
		sealed := len(d.Envelope.Sealed) > 0
		sl.d.Envelope = d.Envelope
		own := sealed && len(d.Envelope.Measurements) == 0
		if own {
			sl.d.Envelope.Measurements = sl.ms[:0] // decoded into the slot's memory
		}
		sl.d.Size, sl.d.Peer = d.Size, d.Peer
		err = r.opener.Open(&sl.d.Envelope, &sl.dec)
		if own {
			sl.ms = sl.d.Envelope.Measurements[:0]
		}
		if err != nil {
			r.refuse(d, err)
			sl.d.Envelope = transport.Envelope{}
			r.slots.Put(sl)
			continue
		}
		if sealed {
			r.opened.Add(1)
		} else {
			r.passed.Add(1) // unsealed, let through by the Opener
		}
		sl.inner = d
		sl.d.Bind(sl)
		return &sl.d, nil
	}
}

// refuse answers an envelope the Opener did not open.
func (r *Receiver) refuse(d *transport.Delivery, err error) {
	env := &d.Envelope
	// Refusals of this sender by the configuration (the tenant, the key,
	// sealing) say so, for the agent to keep its batches and report; the
	// batch's own faults are a bad batch.
	ack := transport.Ack{Status: transport.StatusRejected, Message: err.Error(), Reason: transport.ReasonRefused}
	msg := "seal: refused an envelope"
	switch {
	case errors.Is(err, ErrOutOfWindow):
		r.outOfWindow.Add(1)
		ack.Status, ack.Reason = transport.StatusRetry, transport.ReasonNone
	case errors.Is(err, ErrUnsealed):
		r.unsealed.Add(1)
	case errors.Is(err, ErrUnknownTenant):
		r.unknownTenant.Add(1)
	case errors.Is(err, ErrWrongKey):
		r.wrongKey.Add(1)
	case errors.Is(err, ErrTampered):
		r.tampered.Add(1)
		ack.Reason = transport.ReasonBadBatch
	case errors.Is(err, transport.ErrTooLarge):
		r.tooLarge.Add(1)
		ack.Reason = transport.ReasonTooLarge
	case errors.Is(err, transport.ErrMalformed):
		r.malformed.Add(1)
		ack.Reason = transport.ReasonBadBatch
	default: // the key store failed: not the envelope's fault
		r.keyStore.Add(1)
		ack.Status, ack.Reason = transport.StatusRetry, transport.ReasonNone
		msg = "seal: could not open an envelope"
	}
	r.cfg.logger.Warn(msg, slog.String("peer", d.Peer),
		slog.String("tenant", env.Tenant), slog.String("agent", env.Agent), slog.Uint64("seq", env.Seq),
		slog.Int("size", d.Size), slog.String("answer", ack.Status.String()), slog.String("error", err.Error()))
	if err := d.Ack(ack); err != nil {
		r.ackErrors.Add(1)
		r.cfg.logger.Warn("seal: could not answer a refused envelope", slog.String("peer", d.Peer),
			slog.Uint64("seq", env.Seq), slog.String("error", err.Error()))
	}
}

// Close closes the inner Receiver. It is safe to call more than once if
// the inner Receiver's Close is.
func (r *Receiver) Close() error { return r.inner.Close() }

// Unwrap returns the inner Receiver, for transport.As.
func (r *Receiver) Unwrap() transport.Receiver { return r.inner }

// Stats returns the Receiver's counters.
func (r *Receiver) Stats() ReceiverStats {
	return ReceiverStats{
		Opened:        r.opened.Load(),
		Passed:        r.passed.Load(),
		Unsealed:      r.unsealed.Load(),
		UnknownTenant: r.unknownTenant.Load(),
		WrongKey:      r.wrongKey.Load(),
		Tampered:      r.tampered.Load(),
		OutOfWindow:   r.outOfWindow.Load(),
		Malformed:     r.malformed.Load(),
		TooLarge:      r.tooLarge.Load(),
		KeyStore:      r.keyStore.Load(),
		AckErrors:     r.ackErrors.Load(),
	}
}

// LogValue returns the counters with their log keys (the struct tags).
func (s ReceiverStats) LogValue() slog.Value { return statslog.Value(s) }
