package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meterkit/meter"
)

// Version is the envelope format version AppendEnvelope writes when an
// Envelope's Version is zero, and the one every receiver reads.
const Version = 1

// MaxVersion is the newest envelope format version this package writes and
// reads: version 2 is version 1 with the measurements' meterkit.state label
// in two bytes (envelope.proto, Measurement.state). Decoders accept
// versions 1 to MaxVersion and reject newer ones by number. A sender writes
// version 2 only to a receiver that said it reads it (Ack.Version,
// PeerVersioner), and a receiver of an earlier release rejects it.
const MaxVersion = 2

// Envelope is the unit an agent sends and a publisher acknowledges: one batch
// of measurements with the header that names where it comes from.
type Envelope struct {
	// Version of the envelope format; AppendEnvelope writes Version when
	// zero. With 2, AppendEnvelope writes a measurement's last label, when
	// it is meterkit.state with a level's name, in two bytes.
	Version uint32
	// Tenant owns the measurements (and, once sealed, the key).
	Tenant string
	// Agent identifies the sending agent; with Tenant and Seq it makes the
	// de-duplication key.
	Agent string
	// Seq numbers an agent's batches: it increases by one for each new
	// batch and never goes back, across restarts too (the agent starts from
	// its spool or from the clock in microseconds). A resend carries the same
	// Seq, so that a receiver can drop what it already has.
	Seq uint64
	// SentAt is when the agent first sent the batch.
	SentAt time.Time
	// Host is the default host of the measurements: a measurement whose Host
	// equals it is encoded without one, and decoded with it.
	Host string
	// Measurements of the batch.
	Measurements []meter.Measurement
	// Sealed holds the measurements encrypted and authenticated with the
	// tenant's key, in place of Measurements (see the security work); empty
	// when the envelope is not sealed.
	Sealed []byte
	// Auth carries authentication data (key id, nonce) for Sealed.
	Auth []byte
}

// Status is a receiver's verdict on an envelope.
type Status uint8

const (
	// StatusOK: the receiver took responsibility for the batch. The sender may forget it.
	StatusOK Status = iota
	// StatusRetry: the receiver could not take the batch now (a store is down,
	// it is shutting down). The sender keeps it and sends it again later.
	StatusRetry
	// StatusRejected: the batch can never be accepted (malformed, wrong key).
	// Sending it again is useless.
	StatusRejected
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusRetry:
		return "retry"
	case StatusRejected:
		return "rejected"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Reason refines a Status that is not StatusOK, for the sender to act on.
// It was added to the Ack after the first release: a receiver of that
// release sends none (ReasonNone), and a sender of that release ignores it
// and acts on the Status alone. A value this package does not know is
// carried as it is and treated as ReasonNone.
type Reason uint8

const (
	// ReasonNone: no reason given; act on the Status alone.
	ReasonNone Reason = iota
	// ReasonTooLarge: the envelope is larger than the receiver accepts
	// (Ack.Limit, when known). The sender splits the batch and sends the
	// parts instead. Answered with StatusRejected.
	ReasonTooLarge
	// ReasonRefused: the receiver's configuration refuses this sender (an
	// unknown tenant, a wrong key, sealed or unsealed envelopes not
	// accepted). The batch is not at fault: the sender keeps it, backs off
	// and reports the refusal. Answered with StatusRejected, so that a sender
	// of the first release drops the batch as it always did.
	ReasonRefused
	// ReasonBadBatch: the batch itself can never be accepted (malformed, no
	// valid measurement). Answered with StatusRejected.
	ReasonBadBatch
)

func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonTooLarge:
		return "too large"
	case ReasonRefused:
		return "refused"
	case ReasonBadBatch:
		return "bad batch"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Ack is the reply to one envelope.
type Ack struct {
	Seq     uint64 // the Seq of the envelope acknowledged
	Status  Status
	Message string // why, when Status is not StatusOK
	// Reason refines a Status that is not StatusOK (see Reason).
	Reason Reason
	// Limit is, with ReasonTooLarge, the largest frame the receiver
	// accepts in bytes, 0 when it does not say.
	Limit uint64
	// Version is the newest envelope version the receiver reads; 0 (a
	// receiver of an earlier release) means Version. The nanomsg Receiver
	// writes MaxVersion in every ack.
	Version uint32
}

var (
	// ErrClosed is returned by a Sender or Receiver used after Close.
	ErrClosed = errors.New("transport: closed")
	// ErrRetry is wrapped by a Sender's error when the receiver answered StatusRetry.
	ErrRetry = errors.New("transport: receiver asked to retry")
	// ErrRejected is wrapped by a Sender's error when the receiver answered StatusRejected.
	ErrRejected = errors.New("transport: receiver rejected the batch")
	// ErrMalformed is wrapped by decoding errors of untrusted bytes.
	ErrMalformed = errors.New("transport: malformed frame")
	// ErrTooLarge is wrapped when a frame or envelope exceeds a limit.
	ErrTooLarge = errors.New("transport: too large")
	// ErrRefused is wrapped by a Sender's error when the receiver answered
	// ReasonRefused: its configuration refuses this sender.
	ErrRefused = errors.New("transport: receiver refuses this sender")
)

// AckError turns a non-OK Ack into the error a Sender returns, a
// *ReplyError: it wraps ErrRetry or ErrRejected, and ErrTooLarge or
// ErrRefused for those reasons, and carries the receiver's message.
func AckError(a Ack) error {
	switch a.Status {
	case StatusOK:
		return nil
	case StatusRejected, StatusRetry:
		return &ReplyError{Ack: a}
	}
	return fmt.Errorf("%w: ack for seq %d has unknown status %d", ErrMalformed, a.Seq, a.Status)
}

// ReplyError is the error a Sender returns for an Ack that is not
// StatusOK (see AckError). errors.Is finds ErrRetry or ErrRejected in it,
// after its Status, and ErrTooLarge or ErrRefused, after its Reason;
// errors.As finds it, for the Ack itself (the receiver's Limit).
type ReplyError struct {
	Ack Ack
}

func (e *ReplyError) Error() string {
	var b []byte
	if e.Ack.Status == StatusRetry {
		b = append(b, ErrRetry.Error()...)
	} else {
		b = append(b, ErrRejected.Error()...)
	}
	b = fmt.Appendf(b, ": seq %d", e.Ack.Seq)
	switch e.Ack.Reason {
	case ReasonNone:
	case ReasonTooLarge:
		if e.Ack.Limit > 0 {
			b = fmt.Appendf(b, " (too large; the receiver's limit is %d bytes)", e.Ack.Limit)
		} else {
			b = append(b, " (too large)"...)
		}
	default:
		b = fmt.Appendf(b, " (%s)", e.Ack.Reason)
	}
	b = append(b, ": "...)
	b = append(b, e.Ack.Message...)
	return string(b)
}

// Unwrap returns the sentinels the Ack stands for.
func (e *ReplyError) Unwrap() []error {
	errs := make([]error, 1, 2)
	errs[0] = ErrRejected
	if e.Ack.Status == StatusRetry {
		errs[0] = ErrRetry
	}
	switch e.Ack.Reason {
	case ReasonTooLarge:
		errs = append(errs, ErrTooLarge)
	case ReasonRefused:
		errs = append(errs, ErrRefused)
	}
	return errs
}

// Sender moves envelopes to a receiver and waits for their acknowledgement.
//
// Send returns nil only when the receiver answered StatusOK for env. It
// returns an error wrapping ErrRetry or ErrRejected when the receiver
// answered so, ctx's error when ctx ends first, and ErrClosed after Close.
// Send may be called concurrently; env and its measurements are not used
// after Send returns. Close is safe to call more than once.
type Sender interface {
	Send(ctx context.Context, env *Envelope) error
	Close() error
}

// Receiver hands out received envelopes; each must be acknowledged.
//
// Receive blocks until an envelope arrives, ctx ends, or the Receiver is
// closed (ErrClosed). It may be called concurrently, and that is how a
// publisher works on several envelopes at once. Frames that fail to decode
// are answered StatusRejected by the Receiver itself and counted; they never
// reach the caller. Close is safe to call more than once.
type Receiver interface {
	Receive(ctx context.Context) (*Delivery, error)
	Close() error
}

// Replier is implemented by transports to send a Delivery's acknowledgement.
type Replier interface {
	Reply(d *Delivery, a Ack) error
}

// Delivery is one received envelope awaiting its acknowledgement. The
// Envelope, its measurements and their strings stay valid until Ack is called;
// after that the transport reuses their memory.
type Delivery struct {
	Envelope Envelope
	// Size is the length of the frame on the wire, in bytes.
	Size int
	// Peer describes where the frame came from, for logs (may be empty).
	Peer string

	replier Replier
	acked   bool
}

// Bind attaches the transport's replier and readies d for a new envelope.
// Only transport implementations call it.
func (d *Delivery) Bind(r Replier) {
	d.replier = r
	d.acked = false
}

// Ack sends the acknowledgement. Its Seq is filled from the envelope. A
// second Ack on the same delivery is an error and sends nothing.
func (d *Delivery) Ack(a Ack) error {
	if d.acked {
		return errors.New("transport: delivery acknowledged twice")
	}
	d.acked = true
	a.Seq = d.Envelope.Seq
	if d.replier == nil {
		return errors.New("transport: delivery has no replier")
	}
	return d.replier.Reply(d, a)
}

// RawSender is an optional capability of a Sender: SendRaw sends frame, the
// wire encoding of an envelope as AppendEnvelope writes it, whose Seq is
// seq, as it is, without decoding and encoding it again, and waits for its
// ack with the contract of Send. A spool that keeps envelopes in their wire
// encoding hands them over this way. frame is not used after SendRaw
// returns.
type RawSender interface {
	SendRaw(ctx context.Context, frame []byte, seq uint64) error
}

// AsRawSender returns s as a RawSender if s itself is one. Raw send
// changes what reaches the wire, so it is never taken from below a wrapper
// (Unwrap is for read-only capabilities, see As): a wrapper that puts the
// same bytes on the wire implements SendRaw itself, and one that changes
// the envelope (sealing, which must happen at each attempt) does not, and
// the caller then decodes the frame and calls Send.
func AsRawSender(s Sender) (RawSender, bool) {
	r, ok := s.(RawSender)
	return r, ok
}
