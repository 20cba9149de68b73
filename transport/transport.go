package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meterkit/meter"
)

// Version is the envelope format version this package writes. Decoders
// accept envelopes of this version and reject newer ones by number.
const Version = 1

// Envelope is the unit an agent sends and a publisher acknowledges: one batch
// of measurements with the header that names where it comes from.
type Envelope struct {
	// Version of the envelope format; AppendEnvelope writes Version when zero.
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

// Ack is the reply to one envelope.
type Ack struct {
	Seq     uint64 // the Seq of the envelope acknowledged
	Status  Status
	Message string // why, when Status is not StatusOK
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
)

// AckError turns a non-OK Ack into the error a Sender returns: it wraps
// ErrRetry or ErrRejected and carries the receiver's message.
func AckError(a Ack) error {
	switch a.Status {
	case StatusOK:
		return nil
	case StatusRejected:
		return fmt.Errorf("%w: seq %d: %s", ErrRejected, a.Seq, a.Message)
	case StatusRetry:
		return fmt.Errorf("%w: seq %d: %s", ErrRetry, a.Seq, a.Message)
	}
	return fmt.Errorf("%w: ack for seq %d has unknown status %d", ErrMalformed, a.Seq, a.Status)
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
