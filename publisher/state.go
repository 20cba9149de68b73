package publisher

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/meterkit/meter"
	ispool "github.com/meterkit/meter/internal/spool"
	"github.com/meterkit/meter/internal/stagestate"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/transport"
)

// DefaultTickInterval is how often the publisher ticks the stages that make
// output without input (stage.Ticker) when WithTickInterval is not given.
const DefaultTickInterval = time.Second

// WithID sets the publisher's id (default: the host name). The output of
// its stages made without an input batch (a window closing, a host going
// stale) is sent as batches of agent "publisher/<id>", with the
// publisher's own sequence numbers: give each publisher its own id.
func WithID(id string) Option {
	return func(c *config) error {
		if id == "" {
			return errors.New("publisher: WithID: empty id")
		}
		c.id = id
		return nil
	}
}

// WithTickInterval sets how often the stages that are stage.Tickers are
// ticked (0: DefaultTickInterval, one second).
func WithTickInterval(d time.Duration) Option {
	return func(c *config) error { return setDefault(&c.tickEvery, "WithTickInterval", d, DefaultTickInterval) }
}

// OwnAgent returns the agent id of the publisher's own batches, those of
// its stages' Tick output: "publisher/" and the id (WithID).
func (p *Publisher) OwnAgent() string { return p.st.agent }

// The stages' state in the spool file: bucket stage holds "state" (the
// checkpoint of the stages, as stage.Chain writes it: each stateful stage's
// state under its name) and "own_seq" (the last sequence number of the
// publisher's own batches); bucket stage_order holds, per source (tenant
// NUL agent), the last sequence staged through the order-sensitive stages
// and when (two big-endian uint64s: the sequence, the unix ns; a spool of
// an earlier release holds the sequence alone), a source forgotten
// (order.go) deleted in the transaction of the next batch.
// All are written in the transaction of the batch they go with.
const bucketStage, bucketStageOrder = "stage", "stage_order"

var keyState, keyOwnSeq = []byte("state"), []byte("own_seq")

// stageState is what the publisher keeps about its stages, guarded by
// stageMu.
type stageState struct {
	cp        stage.Checkpointer // nil: no stage keeps state
	r         stage.Restorer
	committed []byte // the state in the spool (what a failure goes back to)
	ordered   bool   // a stage is order-sensitive: the order of each source is tracked
	whole     bool   // the stages are one order-sensitive stage: skipped whole out of order
	last      map[string]uint64
	lastAt    map[string]int64 // when each source's last sequence was staged (unix ns)
	prevAt    int64            // lastAt of the source order changed last, for unorder
	bounds    orderBounds      // order.go
	pruneAt   int64            // the next time prune looks at every source
	forgot    []string         // sources forgotten that the spool still holds: deleted with the next commit
	forgotten atomic.Uint64    // sources forgotten, for Stats.OrderForgotten
	ticker    stage.Ticker
	tickBuf   []meter.Measurement
	agent     string // "publisher/<id>"
	seq       uint64 // the last sequence number of the publisher's own batches
	// counted are the stages in use, for Stats to read without stageMu
	// (stagestats.go).
	counted atomic.Pointer[stageBox]
}

// newStageState finds what the stages need of the publisher, and refuses a
// stateful stage without a spool.
func newStageState(c *config, stages stage.Stage) (*stageState, error) {
	if c.id == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("publisher: no id given (WithID) and os.Hostname failed: %w", err)
		}
		c.id = h
	}
	if c.tickEvery == 0 {
		c.tickEvery = DefaultTickInterval
	}
	st := &stageState{agent: "publisher/" + c.id, last: map[string]uint64{}, lastAt: map[string]int64{}, bounds: defaultOrderBounds}
	st.counted.Store(&stageBox{stages})
	if stages == nil {
		return st, nil
	}
	k := stagestate.Keyed(stages)
	if cp, ok := stage.As[stage.Checkpointer](k); ok {
		if c.spoolDir == "" {
			return nil, fmt.Errorf("publisher: stage %s keeps state (a stage.Checkpointer) and needs WithSpool, "+
				"where its state is committed with each batch it stages; give WithSpool or remove the stage", statefulName(c.stages))
		}
		st.cp = cp
		st.r, _ = stage.As[stage.Restorer](k)
	}
	st.ordered = stage.IsOrderSensitive(stages)
	if o, ok := stage.As[stage.OrderSensitive](stages); ok && o.OrderSensitive() {
		st.whole = true
	}
	st.ticker, _ = stage.As[stage.Ticker](stages)
	return st, nil
}

// replace points st at the stages Reconfigure put in place (their state
// already carried over from the old ones), keeping the order seen of each
// source and the publisher's own sequence. The caller holds stageMu. What
// a failure goes back to is the new stages' state as they start, which the
// next commit writes to the spool.
func (st *stageState) replace(c *config, stages stage.Stage) error {
	n, err := newStageState(c, stages)
	if err != nil {
		return err
	}
	var committed []byte
	if n.cp != nil {
		if committed, err = n.cp.Checkpoint(); err != nil {
			return fmt.Errorf("checkpoint the new stages: %w", err)
		}
	}
	st.cp, st.r, st.ordered, st.whole, st.ticker = n.cp, n.r, n.ordered, n.whole, n.ticker
	st.counted.Store(&stageBox{stages})
	st.committed = committed
	return nil
}

// statefulName names the first stateful stage of stages, for an error.
func statefulName(stages []stage.Stage) string {
	for i, s := range stages {
		if _, ok := stage.As[stage.Checkpointer](s); ok {
			if n := stage.Name(s); n != "" {
				return fmt.Sprintf("%q", n)
			}
			return fmt.Sprintf("%d (%T)", i+1, s)
		}
	}
	return "?"
}

// load restores the stages' state, the order of each source and the own
// sequence number from the spool, at start.
func (st *stageState) load(sp *spool, log interface{ Error(string, ...any) }) error {
	var saved []byte
	err := sp.sp.View(func(tx ispool.Tx) error {
		saved = tx.Get([]string{bucketStage}, keyState)
		if v := tx.Get([]string{bucketStage}, keyOwnSeq); len(v) == 8 {
			st.seq = binary.BigEndian.Uint64(v)
		}
		now := st.bounds.now().UnixNano()
		return tx.ForEach([]string{bucketStageOrder}, func(k, v []byte) error {
			if seq, at, ok := parseOrder(v, now); ok {
				st.last[string(k)], st.lastAt[string(k)] = seq, at
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("publisher: read the stages' state (move the spool away to start afresh): %w", err)
	}
	if saved != nil && st.r != nil {
		if err := st.r.Restore(saved); err != nil {
			log.Error("could not restore the stages' state from the spool; they start fresh", "err", err)
		} else {
			st.committed = saved
		}
	}
	if st.committed == nil && st.cp != nil {
		// What a failure before the first commit goes back to: the fresh state.
		b, err := st.cp.Checkpoint()
		if err != nil {
			return fmt.Errorf("publisher: checkpoint the stages: %w", err)
		}
		st.committed = b
	}
	return nil
}

// rollback gives the stages back the state last committed, after a
// failure between staging a batch and committing it: a resend is then
// staged from the same state, giving the same output at the same
// positions.
func (st *stageState) rollback(log interface{ Error(string, ...any) }) {
	if st.r == nil {
		return
	}
	if err := st.r.Restore(st.committed); err != nil {
		log.Error("could not restore the stages' last committed state", "err", err)
	}
}

// order reports whether the batch seq of source key comes in order, and
// records it when it does; then it forgets the sources silent too long
// (prune, order.go). Called with stageMu held.
func (st *stageState) order(key string, seq uint64) (inOrder bool, prev uint64, had bool) {
	prev, had = st.last[key]
	if had && seq <= prev {
		return false, prev, had
	}
	now := st.bounds.now().UnixNano()
	st.last[key] = seq
	st.prevAt, st.lastAt[key] = st.lastAt[key], now
	if n := st.prune(now); n > 0 {
		st.forgotten.Add(uint64(n))
	}
	return true, prev, had
}

// unorder forgets that seq was staged, after a failure.
func (st *stageState) unorder(key string, prev uint64, had bool) {
	if had {
		st.last[key], st.lastAt[key] = prev, st.prevAt
	} else {
		delete(st.last, key)
		delete(st.lastAt, key)
	}
}

// meta writes the state (and the source's order, when in order) in the
// transaction that commits a batch.
func (st *stageState) meta(state []byte, key string, seq uint64, inOrder bool) func(ispool.Tx) error {
	return func(tx ispool.Tx) error {
		if state != nil {
			if err := tx.Put([]string{bucketStage}, keyState, state); err != nil {
				return err
			}
		}
		for _, k := range st.forgot {
			if _, back := st.last[k]; back {
				continue // staged again since: its put is below
			}
			if err := tx.Delete([]string{bucketStageOrder}, []byte(k)); err != nil {
				return err
			}
		}
		if inOrder && st.ordered {
			return tx.Put([]string{bucketStageOrder}, []byte(key), orderValue(seq, st.lastAt[key]))
		}
		return nil
	}
}

// stageCtx is ctx with the batch's origin, marked out of order when its
// sequence is not above the last one staged for its agent.
func (w *worker) stageCtx(ctx context.Context, env *transport.Envelope, outOfOrder bool) context.Context {
	return stage.WithOrigin(ctx, stage.Origin{Tenant: env.Tenant, Agent: env.Agent, Seq: env.Seq, OutOfOrder: outOfOrder, Publisher: w.p.cfg.id})
}

// handleStateful takes a batch through stateful stages: staging and the
// commit of the output with the stages' state and the batch's
// de-duplication mark, in one spool transaction, happen under stageMu, so
// that the state committed is the state after exactly the batches
// committed. After a failure the stages go back to the state last
// committed. Without stateful stages it does nothing and returns false.
func (w *worker) handleStateful(ctx context.Context, env *transport.Envelope, key string) (_ transport.Ack, stateful bool) {
	p, st := w.p, w.p.st
	p.stageMu.Lock()
	defer p.stageMu.Unlock()
	if st.cp == nil {
		return transport.Ack{}, false
	}
	inOrder, prev, had := true, uint64(0), false
	if st.ordered {
		inOrder, prev, had = st.order(key, env.Seq)
	}
	batch, failed := w.stageLocked(ctx, env, !inOrder)
	if failed {
		// A broken stage: the batch goes on unstaged, the stages stay as
		// they were before it.
		st.rollback(&w.log)
	}
	state, err := st.cp.Checkpoint()
	if err != nil {
		st.rollback(&w.log)
		if st.ordered {
			st.unorder(key, prev, had)
		}
		p.dd.release(key, env.Seq)
		p.c.stageErrors.Add(1)
		p.c.retryEnvelopes.Add(1)
		w.log.Error("could not checkpoint the stages; the agent will resend the batch", "err", err)
		return transport.Ack{Status: transport.StatusRetry, Message: err.Error()}, true
	}
	w.meta = st.meta(state, key, env.Seq, inOrder)
	var ack transport.Ack
	if len(batch) == 0 {
		ack = w.filtered(env, key)
	} else {
		ack = w.spoolBatch(env, key, batch)
	}
	w.meta = nil
	if ack.Status != transport.StatusOK {
		st.rollback(&w.log)
		if st.ordered {
			st.unorder(key, prev, had)
		}
		return ack, true
	}
	st.committed = state
	st.forgot = st.forgot[:0] // deleted from the spool with this batch
	return ack, true
}

// stageLocked runs w.batch through the stages with the batch's origin in
// ctx, stageMu held. It returns the stages' output, or w.batch unstaged
// (failed) when a stage broke; a batch out of order skips an
// order-sensitive stage given alone, and a chain's order-sensitive stages.
func (w *worker) stageLocked(ctx context.Context, env *transport.Envelope, outOfOrder bool) (batch []meter.Measurement, failed bool) {
	p := w.p
	if outOfOrder {
		p.c.outOfOrder.Add(1)
		if p.st.whole {
			p.c.staged.Add(uint64(len(w.batch)))
			p.c.stagedOut.Add(uint64(len(w.batch)))
			return w.batch, false
		}
	}
	// Stages that work in place (a chain always does) work in w.batch
	// itself; after an error there, w.batch is made again from env.
	in := uint64(len(w.batch))
	sctx := w.stageCtx(ctx, env, outOfOrder)
	ip, inPlace := p.stages.(stage.InPlacer)
	var out []meter.Measurement
	var err error
	if inPlace {
		out, err = ip.ProcessInPlace(sctx, w.batch)
	} else {
		out, err = p.stages.Process(sctx, w.batch, w.staged[:0])
	}
	if err != nil {
		p.c.stageErrors.Add(1)
		w.log.Error("a stage failed; the batch goes on unstaged", "err", err)
		if inPlace {
			clear(w.batch)
			w.batch = validAgain(w.batch[:0], env)
		} else {
			clear(out)
			w.staged = out[:0]
		}
		return w.batch, true
	}
	if inPlace {
		w.batch = out // it may have grown
	} else {
		w.staged = out
	}
	n := uint64(len(out))
	p.c.staged.Add(in)
	p.c.stagedOut.Add(n)
	if n < in {
		p.c.filtered.Add(in - n)
	}
	return out, false
}

// tickLoop ticks the stages every tick interval until ctx ends.
func (p *Publisher) tickLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.tickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.tick(ctx, now)
		}
	}
}

// tick runs the stages' Tick and sends what it makes as a batch of the
// publisher's own identity, through the spool (with the stages' state and
// the publisher's sequence number, in one transaction) or, without a spool,
// to the sinks. After a failure the stages go back to their committed
// state, and make the same output at a later tick.
func (p *Publisher) tick(ctx context.Context, now time.Time) {
	st := p.st
	p.stageMu.Lock()
	defer p.stageMu.Unlock()
	if st.ticker == nil { // no stage ticks (Reconfigure may add one)
		return
	}
	seq := max(st.seq+1, uint64(now.UnixMicro()))
	log := &envLogger{base: p.log, env: &transport.Envelope{Agent: st.agent, Seq: seq}}
	tctx := stage.WithOrigin(ctx, stage.Origin{Agent: st.agent, Seq: seq, Publisher: p.cfg.id})
	out, err := st.ticker.Tick(tctx, now, st.tickBuf[:0])
	defer func() { clear(out); st.tickBuf = out[:0] }()
	if err != nil {
		p.c.stageErrors.Add(1)
		log.Error("a stage failed to tick", "err", err)
		st.rollback(log)
		return
	}
	if len(out) == 0 {
		return // a tick without output changes no state worth a commit
	}
	env := &transport.Envelope{Version: transport.Version, Agent: st.agent, Seq: seq, SentAt: now}
	if p.spool == nil {
		bid := sink.BatchID{Agent: st.agent, Seq: seq}
		if err := p.write(ctx, log, bid, false, out); err != nil {
			log.Error("could not write the stages' tick output; lost", "measurements", len(out), "err", err)
			return
		}
		st.seq = seq
		p.c.ticked.Add(uint64(len(out)))
		p.c.written.Add(uint64(len(out)))
		return
	}
	var state []byte
	if st.cp != nil {
		if state, err = st.cp.Checkpoint(); err != nil {
			p.c.stageErrors.Add(1)
			log.Error("could not checkpoint the stages; their tick output comes again later", "err", err)
			st.rollback(log)
			return
		}
	}
	drops, err := p.spool.append(env, out, nil, "", func(tx ispool.Tx) error {
		if state != nil {
			if err := tx.Put([]string{bucketStage}, keyState, state); err != nil {
				return err
			}
		}
		return tx.Put([]string{bucketStage}, keyOwnSeq, u64(seq))
	})
	if err != nil {
		log.Error("could not spool the stages' tick output; it comes again at a later tick", "err", err)
		st.rollback(log)
		return
	}
	st.seq = seq
	if state != nil {
		st.committed = state
	}
	for _, d := range drops {
		p.c.spoolDropped.Add(uint64(d.measurements))
		log.Error("spool lane full: dropped its oldest batches", "sink", d.lane, "batches", d.batches, "measurements", d.measurements)
	}
	p.c.ticked.Add(uint64(len(out)))
	p.c.spooled.Add(uint64(len(out)))
}
