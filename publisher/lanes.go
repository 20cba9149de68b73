package publisher

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

// runLane delivers one sink's spooled batches, oldest first, retrying a
// failing sink with exponential backoff and jitter. A batch in doubt (an
// earlier attempt may have reached the store) is first checked against the
// sink's receipts, when it keeps them, and only the rest is written. It
// returns when ctx ends.
func (p *Publisher) runLane(ctx context.Context, s *guardedSink, l *lane) {
	var dec transport.Decoder
	var env transport.Envelope
	log := &envLogger{base: p.log, env: &env}
	backoff := p.cfg.backoffMin
	// retry waits before the next attempt; false means ctx ended.
	// The failed write is counted by classify, the failed question here.
	retry := func(what string, err error) bool {
		p.c.sinkRetries.Add(1)
		wait := backoff + time.Duration((rand.Float64()-0.5)*0.4*float64(backoff))
		log.Warn(what+"; will retry", "sink", s.name, "in", wait, "err", err)
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, p.cfg.backoffMax)
		return true
	}
	for {
		id, doubt, ok, err := p.spool.first(ctx, l, &dec, &env)
		if !ok {
			return
		}
		if err != nil {
			p.c.spoolDropped.Add(1)
			p.log.Error("spooled batch unreadable; dropped", "sink", s.name, "err", err)
			_ = p.spool.remove(l, id)
			p.signalDelivered()
			continue
		}
		bid := sink.BatchID{Tenant: env.Tenant, Agent: env.Agent, Seq: env.Seq}
		log.l = nil // a new batch: its own tenant, agent and seq
		from, err := p.reconcile(ctx, s, bid, doubt, len(env.Measurements))
		if err != nil {
			p.c.sinkErrors.Add(1)
			if ctx.Err() != nil || !retry("could not ask the sink what it holds of a batch in doubt", err) {
				return // the batch stays spooled, still in doubt
			}
			continue
		}
		rest := env.Measurements[from:]
		n := uint64(len(rest))
		werr := s.write(ctx, p.cfg.writeLimit, bid, from, rest)
		if errors.Is(werr, errSinkClosed) && ctx.Err() != nil {
			return // Reconfigure removed the sink: the batch stays, not in doubt
		}
		switch r, rejected := p.classify(log, s, werr); r {
		case sinkTook:
			p.c.written.Add(n - uint64(rejected))
		case sinkRefused:
			p.c.sinkDropped.Add(n)
			log.Error("sink refused a batch for good; dropped", "sink", s.name, "measurements", n, "err", werr)
		case sinkFailed:
			// The store may have taken some or all of it before the failure.
			p.spool.doubt(l, id)
			if ctx.Err() != nil || !retry("sink write failed", werr) {
				return // shutting down: the batch stays spooled
			}
			continue
		}
		backoff = p.cfg.backoffMin
		if err := p.spool.remove(l, id); err != nil {
			p.log.Error("could not forget a delivered batch; it may be delivered again", "sink", s.name, "err", err)
		}
		p.signalDelivered()
	}
}

// reconcile returns the position from which a batch of n measurements is
// to be written to s: 0, unless the batch is in doubt and s's receipts say
// the store holds a part of it already.
func (p *Publisher) reconcile(ctx context.Context, s *guardedSink, id sink.BatchID, doubt bool, n int) (int, error) {
	if !doubt {
		return 0, nil
	}
	held, err := s.stored(ctx, p.cfg.writeLimit, id)
	switch {
	case errors.Is(err, sink.ErrNoReceipts):
		p.c.resentInDoubt.Add(uint64(n))
		return 0, nil
	case err != nil:
		return 0, err
	}
	held = min(held, n)
	p.c.reconciled.Add(uint64(held))
	if held > 0 {
		p.log.Info("the store already holds a batch in doubt, by its receipts; writing only the rest",
			"sink", s.name, "batch", id.String(), "held", held, "of", n)
	}
	return held, nil
}

// signalDelivered wakes Run's drain, if it waits, to look at what the lanes
// still hold.
func (p *Publisher) signalDelivered() {
	select {
	case p.delivered <- struct{}{}:
	default:
	}
}
