package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

// worker owns a scratch batch so that validation allocates nothing.
type worker struct {
	p       *Publisher
	batch   []meter.Measurement
	evicted []uint64 // scratch for the de-duplication window
	log     envLogger
}

// envLogger logs with the envelope's tenant, agent and seq. It builds that
// logger on the first line logged, so an envelope that logs nothing costs
// no allocation.
type envLogger struct {
	base *slog.Logger
	env  *transport.Envelope
	l    *slog.Logger
}

func (e *envLogger) get() *slog.Logger {
	if e.l == nil {
		e.l = e.base.With("tenant", e.env.Tenant, "agent", e.env.Agent, "seq", e.env.Seq)
	}
	return e.l
}

func (e *envLogger) Warn(msg string, args ...any)  { e.get().Warn(msg, args...) }
func (e *envLogger) Error(msg string, args ...any) { e.get().Error(msg, args...) }

func (w *worker) run(ctx, workCtx context.Context) error {
	for {
		d, err := w.p.recv.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, transport.ErrClosed) {
				return nil
			}
			w.p.log.Error("receive failed", "err", err)
			return fmt.Errorf("publisher: receive: %w", err)
		}
		ack := w.handle(workCtx, d)
		if err := d.Ack(ack); err != nil {
			w.p.c.ackErrors.Add(1)
			w.p.log.Warn("could not send acknowledgement; the agent will resend",
				"agent", d.Envelope.Agent, "seq", d.Envelope.Seq, "err", err)
		}
	}
}

// handle validates and writes one envelope and returns the verdict for the agent.
func (w *worker) handle(ctx context.Context, d *transport.Delivery) transport.Ack {
	p, env := w.p, &d.Envelope
	p.c.envelopes.Add(1)
	p.c.received.Add(uint64(len(env.Measurements)))
	log := &w.log
	*log = envLogger{base: p.log, env: env}
	if len(env.Sealed) > 0 {
		p.c.rejectedEnvelopes.Add(1)
		log.Warn("sealed envelope, but this publisher has no tenant keys; rejected")
		return transport.Ack{Status: transport.StatusRejected, Message: "sealed envelopes are not accepted here"}
	}

	w.batch = w.batch[:0]
	var firstErr error
	invalid := 0
	for i := range env.Measurements {
		m := &env.Measurements[i]
		if err := m.Validate(); err != nil {
			invalid++
			if firstErr == nil {
				firstErr = fmt.Errorf("measurement %d (%q): %w", i, m.Name, err)
			}
			continue
		}
		w.batch = append(w.batch, *m)
	}
	if invalid > 0 {
		p.c.invalid.Add(uint64(invalid))
		log.Warn("dropped invalid measurements; the rest of the batch goes on",
			"invalid", invalid, "of", len(env.Measurements), "first", firstErr)
	}
	if len(w.batch) == 0 {
		p.c.rejectedEnvelopes.Add(1)
		msg := "empty batch"
		if firstErr != nil {
			msg = "no valid measurement: " + firstErr.Error()
		}
		return transport.Ack{Status: transport.StatusRejected, Message: msg}
	}

	key := sourceKey(env.Tenant, env.Agent)
	bid := sink.BatchID{Tenant: env.Tenant, Agent: env.Agent, Seq: env.Seq}
	switch p.dd.reserve(key, env.Seq) {
	case accepted: // accepted before; its ack was lost
		p.c.duplicates.Add(1)
		return transport.Ack{Status: transport.StatusOK, Message: "duplicate"}
	case busy: // the first copy may still fail: the agent asks again later
		p.c.retryEnvelopes.Add(1)
		return transport.Ack{Status: transport.StatusRetry, Message: "this batch is being handled; ask again"}
	}
	if p.spool != nil {
		drops, err := p.spool.append(env, w.batch, p.dd, key)
		if err != nil {
			p.dd.release(key, env.Seq)
			p.c.retryEnvelopes.Add(1)
			log.Error("could not spool a batch; the agent will resend it", "err", err)
			return transport.Ack{Status: transport.StatusRetry, Message: err.Error()}
		}
		for _, d := range drops {
			p.c.spoolDropped.Add(uint64(d.measurements))
			log.Error("spool lane full: dropped its oldest batches", "sink", d.lane, "batches", d.batches, "measurements", d.measurements)
		}
		p.c.spooled.Add(uint64(len(w.batch)))
	} else if err := p.write(ctx, log, bid, p.doubts.take(bid), w.batch); err != nil {
		p.dd.release(key, env.Seq)
		if !sink.IsPermanent(err) {
			// A sink may have taken the batch before failing: check its
			// receipts when the agent sends the batch again.
			p.doubts.add(bid)
		}
		if sink.IsPermanent(err) {
			p.c.rejectedEnvelopes.Add(1)
			return transport.Ack{Status: transport.StatusRejected, Message: err.Error()}
		}
		p.c.retryEnvelopes.Add(1)
		return transport.Ack{Status: transport.StatusRetry, Message: err.Error()}
	} else {
		w.evicted = p.dd.add(w.evicted[:0], key, env.Seq, p.dd.nowNanos())
		p.c.written.Add(uint64(len(w.batch)))
	}
	p.c.acked.Add(1)
	clear(w.batch) // no references into the delivery survive its ack
	if invalid > 0 {
		return transport.Ack{Status: transport.StatusOK, Message: fmt.Sprintf("%d invalid measurement(s) dropped: %v", invalid, firstErr)}
	}
	return transport.Ack{Status: transport.StatusOK}
}
