package nanomsg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/rep"

	"github.com/meterkit/meter/internal/statslog"
	"github.com/meterkit/meter/transport"
)

// Receiver receives envelopes on a REP socket and answers each with the ack
// its Delivery is given. It implements transport.Receiver.
//
// Each of its workers (WithConcurrency) receives one frame, decodes it into
// memory it reuses, hands the Delivery to a Receive call and waits for the
// Ack before it takes the next frame. Frames that fail to decode are answered
// StatusRejected by the worker, counted and logged; they never reach Receive.
type Receiver struct {
	sock mangos.Socket
	cfg  config
	addr string

	deliveries chan *transport.Delivery
	done       chan struct{}
	closeOnce  sync.Once
	wg         sync.WaitGroup

	received, malformed, tooLarge atomic.Uint64
	ackOK, ackRetry, ackRejected  atomic.Uint64
	ackErrors                     atomic.Uint64
}

var _ transport.Receiver = (*Receiver)(nil)

// ReceiverStats counts what a Receiver did since Listen.
type ReceiverStats struct {
	Received      uint64 `log:"received"`       // frames received, malformed ones included
	Malformed     uint64 `log:"malformed"`      // frames that failed to decode (not counting TooLarge)
	TooLarge      uint64 `log:"too_large"`      // frames over a limit
	AckedOK       uint64 `log:"acked_o_k"`      // StatusOK answers sent
	AckedRetry    uint64 `log:"acked_retry"`    // StatusRetry answers sent
	AckedRejected uint64 `log:"acked_rejected"` // StatusRejected answers sent, malformed frames included
	AckErrors     uint64 `log:"ack_errors"`     // answers that could not be sent
}

// Listen returns a Receiver listening at addr (tcp://host:port,
// tls+tcp://host:port, ipc:///path or inproc://name). A tcp port 0 picks a
// free port; Addr tells which.
func Listen(addr string, opts ...ListenOption) (*Receiver, error) {
	c, err := listenConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := checkAddr(addr, &c); err != nil {
		return nil, fmt.Errorf("nanomsg: listen %s: %w", addr, err)
	}
	sock, err := rep.NewSocket()
	if err != nil {
		return nil, fmt.Errorf("nanomsg: listen %s: %w", addr, err)
	}
	if err := sock.SetOption(mangos.OptionMaxRecvSize, wireLimit(c.maxFrame)); err != nil {
		_ = sock.Close()
		return nil, fmt.Errorf("nanomsg: listen %s: set %s: %w", addr, mangos.OptionMaxRecvSize, err)
	}
	l, err := sock.NewListener(addr, endpointOptions(addr, &c, false))
	if err == nil {
		err = l.Listen()
	}
	if err != nil {
		_ = sock.Close()
		return nil, fmt.Errorf("nanomsg: listen %s: %w", addr, err)
	}
	r := &Receiver{
		sock:       sock,
		cfg:        c,
		addr:       l.Address(),
		deliveries: make(chan *transport.Delivery),
		done:       make(chan struct{}),
	}
	workers := make([]*worker, c.concurrency)
	for i := range workers {
		mc, err := sock.OpenContext()
		if err == nil {
			err = mc.SetOption(mangos.OptionSendDeadline, ackSendTimeout)
		}
		if err != nil {
			_ = sock.Close()
			return nil, fmt.Errorf("nanomsg: listen %s: open context: %w", addr, err)
		}
		workers[i] = &worker{r: r, mc: mc, dec: transport.Decoder{Limits: c.limits},
			acked: make(chan struct{}, 1)}
	}
	r.wg.Add(len(workers))
	for _, w := range workers {
		go w.run()
	}
	return r, nil
}

// Addr returns the address the Receiver listens at, with the port it got
// when it asked for port 0.
func (r *Receiver) Addr() string { return r.addr }

// Receive returns the next envelope. It blocks until one arrives, ctx ends
// (ctx's error) or the Receiver is closed (transport.ErrClosed). The
// Delivery and its envelope stay valid until its Ack; the sender waits for
// that Ack, and sends the envelope again if it does not come in time.
func (r *Receiver) Receive(ctx context.Context) (*transport.Delivery, error) {
	select {
	case <-r.done:
		return nil, transport.ErrClosed
	default:
	}
	select {
	case d := <-r.deliveries:
		return d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.done:
		return nil, transport.ErrClosed
	}
}

// Close closes the socket and waits for the workers to stop. Envelopes
// handed out and not yet acknowledged get no answer (their Ack returns
// transport.ErrClosed); their senders send them again. It is safe to call
// more than once.
func (r *Receiver) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.done)
		if e := r.sock.Close(); e != nil && !errors.Is(e, mangos.ErrClosed) {
			err = fmt.Errorf("nanomsg: close receiver at %s: %w", r.addr, e)
		}
		r.wg.Wait()
	})
	return err
}

// Stats returns the Receiver's counters.
func (r *Receiver) Stats() ReceiverStats {
	return ReceiverStats{
		Received:      r.received.Load(),
		Malformed:     r.malformed.Load(),
		TooLarge:      r.tooLarge.Load(),
		AckedOK:       r.ackOK.Load(),
		AckedRetry:    r.ackRetry.Load(),
		AckedRejected: r.ackRejected.Load(),
		AckErrors:     r.ackErrors.Load(),
	}
}

// worker owns one REP context and the memory of the envelope it works on.
type worker struct {
	r     *Receiver
	mc    mangos.Context
	dec   transport.Decoder
	d     transport.Delivery
	acked chan struct{} // the Delivery was answered

	peerPipe uint32 // pipe of the cached peer string
	peer     string
}

func (w *worker) run() {
	defer w.r.wg.Done()
	r := w.r
	for {
		m, err := w.mc.RecvMsg()
		if err != nil {
			select {
			case <-r.done:
				return
			default:
			}
			if errors.Is(err, mangos.ErrClosed) {
				return
			}
			continue // a timeout or protocol state error: try again
		}
		r.received.Add(1)
		size := len(m.Body)
		peer := w.peerOf(m.Pipe)
		err = w.dec.Decode(m.Body, &w.d.Envelope)
		m.Free() // the decoded envelope does not alias the frame
		if err != nil {
			w.reject(err, size, peer)
			continue
		}
		w.d.Size = size
		w.d.Peer = peer
		w.d.Bind(w)
		select {
		case r.deliveries <- &w.d:
		case <-r.done:
			return
		}
		select {
		case <-w.acked:
		case <-r.done:
			return
		}
	}
}

// reject answers a frame that failed to decode.
func (w *worker) reject(err error, size int, peer string) {
	r := w.r
	if errors.Is(err, transport.ErrTooLarge) {
		r.tooLarge.Add(1)
	} else {
		r.malformed.Add(1)
	}
	r.cfg.logger.Warn("nanomsg: rejected a frame that does not decode",
		slog.String("listen", r.addr), slog.String("peer", peer),
		slog.Int("size", size), slog.String("error", err.Error()))
	// The envelope's Seq is unknown: answer Seq 0. A frame over the limit
	// says so, with the limit, for the sender to split its batch.
	ack := transport.Ack{Status: transport.StatusRejected, Message: err.Error(), Reason: transport.ReasonBadBatch}
	if size > r.cfg.maxFrame {
		ack.Reason, ack.Limit = transport.ReasonTooLarge, uint64(r.cfg.maxFrame)
	}
	if err := w.send(ack); err != nil {
		r.cfg.logger.Warn("nanomsg: could not answer a malformed frame",
			slog.String("listen", r.addr), slog.String("peer", peer), slog.String("error", err.Error()))
	}
}

// Reply implements transport.Replier: it sends the ack of the worker's
// Delivery and lets the worker take the next frame.
func (w *worker) Reply(d *transport.Delivery, a transport.Ack) error {
	err := w.send(a)
	select {
	case w.acked <- struct{}{}:
	default:
	}
	if err != nil {
		return fmt.Errorf("nanomsg: ack seq %d to %s: %w", a.Seq, d.Peer, err)
	}
	return nil
}

func (w *worker) send(a transport.Ack) error {
	r := w.r
	// Count before sending, so that a peer holding the answer always sees
	// it counted; take it back if the answer could not be sent.
	ctr := &r.ackRejected
	switch a.Status {
	case transport.StatusOK:
		ctr = &r.ackOK
	case transport.StatusRetry:
		ctr = &r.ackRetry
	}
	ctr.Add(1)
	if a.Version == 0 {
		a.Version = transport.MaxVersion // every ack says what this receiver reads
	}
	m := mangos.NewMessage(32 + len(a.Message))
	m.Body = transport.AppendAck(m.Body, a)
	if err := w.mc.SendMsg(m); err != nil {
		ctr.Add(^uint64(0))
		m.Free()
		r.ackErrors.Add(1)
		if errors.Is(err, mangos.ErrClosed) {
			return transport.ErrClosed
		}
		return err
	}
	return nil
}

// peerOf caches the peer string of the last pipe a frame came from.
func (w *worker) peerOf(p mangos.Pipe) string {
	if p == nil {
		return ""
	}
	if id := p.ID(); id != w.peerPipe || w.peer == "" {
		w.peerPipe, w.peer = id, peerOf(p)
	}
	return w.peer
}

// LogValue returns the counters with their log keys (the struct tags).
func (s ReceiverStats) LogValue() slog.Value { return statslog.Value(s) }
