package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/meterkit/meter"
	ispool "github.com/meterkit/meter/internal/spool"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

// worker owns a scratch batch so that validation allocates nothing.
type worker struct {
	p       *Publisher
	batch   []meter.Measurement   // the envelope's valid measurements, the stages' input
	staged  []meter.Measurement   // the stages' output
	evicted []uint64              // scratch for the de-duplication window
	meta    func(ispool.Tx) error // the stages' state, written with the batch (state.go); nil without
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

// handle takes one envelope through the pipeline and returns the verdict
// for the agent: receive (done) -> validate -> de-duplicate -> stages ->
// spool or write -> ack (the caller sends it).
func (w *worker) handle(ctx context.Context, d *transport.Delivery) transport.Ack {
	p, env := w.p, &d.Envelope
	p.c.envelopes.Add(1)
	p.c.received.Add(uint64(len(env.Measurements)))
	log := &w.log
	*log = envLogger{base: p.log, env: env}
	defer w.forget()
	if len(env.Sealed) > 0 {
		p.c.rejectedEnvelopes.Add(1)
		log.Warn("sealed envelope, but this publisher has no tenant keys; rejected")
		return transport.Ack{Status: transport.StatusRejected, Reason: transport.ReasonRefused, Message: "sealed envelopes are not accepted here"}
	}

	invalid, firstErr := w.validate(env)
	if len(w.batch) == 0 {
		p.c.rejectedEnvelopes.Add(1)
		msg := "empty batch"
		if firstErr != nil {
			msg = "no valid measurement: " + firstErr.Error()
		}
		return transport.Ack{Status: transport.StatusRejected, Reason: transport.ReasonBadBatch, Message: msg}
	}

	key := sourceKey(env.Tenant, env.Agent)
	switch p.dd.reserve(key, env.Seq) {
	case accepted: // accepted before; its ack was lost
		p.c.duplicates.Add(1)
		return transport.Ack{Status: transport.StatusOK, Message: "duplicate"}
	case busy: // the first copy may still fail: the agent asks again later
		p.c.retryEnvelopes.Add(1)
		return transport.Ack{Status: transport.StatusRetry, Message: "this batch is being handled; ask again"}
	}

	// Stateful stages or not is read under stageMu, as Reconfigure may
	// change it between the two looks.
	var ack transport.Ack
	for {
		var stateful bool
		if ack, stateful = w.handleStateful(ctx, env, key); stateful { // state.go
			break
		}
		batch, stateful := w.stage(ctx, env, key)
		if stateful {
			continue
		}
		switch {
		case len(batch) == 0:
			ack = w.filtered(env, key)
		case p.spool != nil:
			ack = w.spoolBatch(env, key, batch)
		default:
			ack = w.writeBatch(ctx, env, key, batch)
		}
		break
	}
	if ack.Status != transport.StatusOK {
		return ack
	}
	p.c.acked.Add(1)
	if invalid > 0 {
		ack.Message = fmt.Sprintf("%d invalid measurement(s) dropped: %v", invalid, firstErr)
	}
	return ack
}

// validate fills w.batch with env's valid measurements, and counts and
// logs the others.
func (w *worker) validate(env *transport.Envelope) (invalid int, firstErr error) {
	w.batch = w.batch[:0]
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
		w.p.c.invalid.Add(uint64(invalid))
		w.log.Warn("dropped invalid measurements; the rest of the batch goes on",
			"invalid", invalid, "of", len(env.Measurements), "first", firstErr)
	}
	return invalid, firstErr
}

// stage runs w.batch through the stages, one batch at a time, and returns
// their output (w.batch itself without stages). A broken stage (an error)
// is logged and counted, and the batch goes on unstaged: nothing accepted
// is lost. This is the path of stages without state; handleStateful
// (state.go) is the other, and stage reports true, staging nothing, when
// Reconfigure has just put stateful stages in place.
func (w *worker) stage(ctx context.Context, env *transport.Envelope, key string) (_ []meter.Measurement, stateful bool) {
	p := w.p
	p.stageMu.Lock() // Reconfigure may replace the stages
	st := p.stages
	if st == nil {
		p.stageMu.Unlock()
		return w.batch, false
	}
	if p.st.cp != nil {
		p.stageMu.Unlock()
		return nil, true
	}
	inOrder := true
	if p.st.ordered {
		inOrder, _, _ = p.st.order(key, env.Seq)
	}
	batch, _ := w.stageLocked(ctx, env, !inOrder) // state.go
	p.stageMu.Unlock()
	return batch, false
}

// validAgain appends env's valid measurements to dst, as validate does,
// without counting or logging the others again.
func validAgain(dst []meter.Measurement, env *transport.Envelope) []meter.Measurement {
	for i := range env.Measurements {
		if env.Measurements[i].Validate() == nil {
			dst = append(dst, env.Measurements[i])
		}
	}
	return dst
}

// filtered acknowledges a batch the stages reduced to nothing: nothing to
// spool or write, but its seq is recorded (in the spool, when there is
// one) so that a resend is a duplicate.
func (w *worker) filtered(env *transport.Envelope, key string) transport.Ack {
	p := w.p
	if p.spool != nil {
		if err := p.spool.mark(p.dd, key, env.Seq, w.meta); err != nil {
			p.dd.release(key, env.Seq)
			p.c.retryEnvelopes.Add(1)
			w.log.Error("could not record a filtered batch as accepted; the agent will resend it", "err", err)
			return transport.Ack{Status: transport.StatusRetry, Message: err.Error()}
		}
	} else {
		w.evicted = p.dd.add(w.evicted[:0], key, env.Seq, p.dd.nowNanos())
	}
	p.c.filteredEnvelopes.Add(1)
	return transport.Ack{Status: transport.StatusOK}
}

// spoolBatch stores batch in the spool, where the lanes deliver it, and
// records its seq in the same transaction.
func (w *worker) spoolBatch(env *transport.Envelope, key string, batch []meter.Measurement) transport.Ack {
	p := w.p
	drops, err := p.spool.append(env, batch, p.dd, key, w.meta)
	if err != nil {
		p.dd.release(key, env.Seq)
		p.c.retryEnvelopes.Add(1)
		w.log.Error("could not spool a batch; the agent will resend it", "err", err)
		return transport.Ack{Status: transport.StatusRetry, Message: err.Error()}
	}
	for _, d := range drops {
		p.c.spoolDropped.Add(uint64(d.measurements))
		w.log.Error("spool lane full: dropped its oldest batches", "sink", d.lane, "batches", d.batches, "measurements", d.measurements)
	}
	p.c.spooled.Add(uint64(len(batch)))
	return transport.Ack{Status: transport.StatusOK}
}

// writeBatch writes batch to every sink and records its seq once they all
// took it.
func (w *worker) writeBatch(ctx context.Context, env *transport.Envelope, key string, batch []meter.Measurement) transport.Ack {
	p := w.p
	bid := sink.BatchID{Tenant: env.Tenant, Agent: env.Agent, Seq: env.Seq}
	if err := p.write(ctx, &w.log, bid, p.doubts.take(bid), batch); err != nil {
		p.dd.release(key, env.Seq)
		if sink.IsPermanent(err) {
			p.c.rejectedEnvelopes.Add(1)
			return transport.Ack{Status: transport.StatusRejected, Message: err.Error()}
		}
		// A sink may have taken the batch before failing: check its
		// receipts when the agent sends the batch again.
		p.doubts.add(bid)
		p.c.retryEnvelopes.Add(1)
		return transport.Ack{Status: transport.StatusRetry, Message: err.Error()}
	}
	w.evicted = p.dd.add(w.evicted[:0], key, env.Seq, p.dd.nowNanos())
	p.c.written.Add(uint64(len(batch)))
	return transport.Ack{Status: transport.StatusOK}
}

// forget drops the references into the delivery and into the stages'
// output, keeping the buffers: none survives the ack.
func (w *worker) forget() {
	clear(w.batch)
	clear(w.staged)
	w.batch, w.staged = w.batch[:0], w.staged[:0]
}
