package transport

import (
	"context"
	"slices"
	"sync"
)

// Pipe returns a connected in-memory Sender and Receiver, for tests and for
// programs that run an agent and a publisher in one process without a
// network. Envelopes are handed over without encoding: Send blocks until the
// receiving side acknowledges, so the envelope stays valid until then, as the
// Delivery contract requires. Closing either end closes both.
func Pipe() (Sender, Receiver) {
	p := &pipe{ch: make(chan *pipeReq), done: make(chan struct{})}
	return (*pipeSender)(p), (*pipeReceiver)(p)
}

type pipe struct {
	ch        chan *pipeReq
	done      chan struct{}
	closeOnce sync.Once
}

type pipeReq struct {
	d     Delivery
	reply chan Ack
}

func (r *pipeReq) Reply(_ *Delivery, a Ack) error {
	r.reply <- a // buffered: never blocks
	return nil
}

func (p *pipe) close() error {
	p.closeOnce.Do(func() { close(p.done) })
	return nil
}

type pipeSender pipe

func (s *pipeSender) Send(ctx context.Context, env *Envelope) error {
	p := (*pipe)(s)
	req := &pipeReq{reply: make(chan Ack, 1)}
	req.d.Envelope = *env
	// The receiver may still hold the delivery after ctx ends and Send
	// returns; the caller may then reuse env, so hand over a copy.
	req.d.Envelope.Measurements = slices.Clone(env.Measurements)
	req.d.Envelope.Sealed = slices.Clone(env.Sealed)
	req.d.Envelope.Auth = slices.Clone(env.Auth)
	req.d.Bind(req)
	select {
	case p.ch <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		return ErrClosed
	}
	select {
	case a := <-req.reply:
		if a.Seq != env.Seq {
			return AckError(Ack{Seq: a.Seq, Status: 255})
		}
		return AckError(a)
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		return ErrClosed
	}
}

func (s *pipeSender) Close() error { return (*pipe)(s).close() }

type pipeReceiver pipe

func (r *pipeReceiver) Receive(ctx context.Context) (*Delivery, error) {
	p := (*pipe)(r)
	select {
	case <-p.done:
		return nil, ErrClosed
	default:
	}
	select {
	case req := <-p.ch:
		return &req.d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.done:
		return nil, ErrClosed
	}
}

func (r *pipeReceiver) Close() error { return (*pipe)(r).close() }
