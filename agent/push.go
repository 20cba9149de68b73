package agent

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/transport"
)

// Push sources (driver.Pusher).
//
// A driver given to WithDriver that is a driver.Pusher is not polled: Run
// calls its Push once in a goroutine of its own (again after a backoff if it
// returns or panics before ctx ends), and what it delivers is added as Add
// does, with its ack attached to every batch that takes some of the
// delivery's measurements. The ack fires once all of them are durable:
//
//   - with a spool (WithSpool), when the spool's transaction holding the
//     last of them committed;
//   - without, when the publisher acknowledged the last of them.
//
// It fires with an error wrapping driver.ErrNotDelivered when a batch
// holding some of them could not be stored, was dropped (the memory queue's
// drop-oldest), rejected or failed for good, or was still unacknowledged when
// Run returned. With a spool, a delivery's key goes into the spool in the
// transaction of the batch that holds its last measurements (batches are cut
// by count only between deliveries; by bytes, a delivery may span batches),
// and a delivery whose key the spool holds is acknowledged at once. Measurements a stage absorbed, or that were invalid, need no
// durability: if none of a delivery's measurements reach a batch, its ack
// fires with nil at once. A batch holding a delivery's measurements is kept:
// neither the memory queue's nor the spool's drop-oldest drops it, and
// deliver waits for room among kept batches (back-pressure) before it adds
// a delivery (keep.go).

// pushAck is one delivery's ack, fired once every batch that holds some of
// its measurements is settled, with the first error.
type pushAck struct {
	mu  sync.Mutex
	n   int
	err error
	fn  func(error)
	key string // driver.Delivery.Key
}

func (p *pushAck) hold() {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
}

func (p *pushAck) settle(err error) {
	p.mu.Lock()
	if err != nil && p.err == nil {
		p.err = err
	}
	p.n--
	fire, e := p.n == 0, p.err
	p.mu.Unlock()
	if fire {
		p.fn(e)
	}
}

func settleAll(acks []*pushAck, err error) {
	for _, p := range acks {
		p.settle(err)
	}
}

// notDelivered wraps driver.ErrNotDelivered with why.
func notDelivered(format string, args ...any) error {
	return fmt.Errorf("agent: %w: %s", driver.ErrNotDelivered, fmt.Sprintf(format, args...))
}

// runPush runs a push source until ctx ends, restarting it with backoff
// when it returns early or panics.
func (a *Agent) runPush(ctx context.Context, s schedule, p driver.Pusher) {
	backoff := a.cfg.backoffMin
	deliver := func(d driver.Delivery) { a.deliverPush(ctx, s.name, d) }
	for ctx.Err() == nil {
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					a.c.panics.Add(1)
					err = fmt.Errorf("panic: %v", r)
					a.log.Error("push driver panicked; it is started again", "driver", s.name,
						"panic", r, "stack", string(debug.Stack()))
				}
			}()
			err = p.Push(ctx, deliver)
		}()
		if ctx.Err() != nil {
			return
		}
		a.c.collectErrors.Add(1)
		a.log.Warn("push driver returned before the agent stopped; starting it again", "driver", s.name,
			"in", backoff, "err", err)
		t := time.NewTimer(jittered(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, a.cfg.backoffMax)
	}
}

// deliverPush is a push source's driver.Deliver.
func (a *Agent) deliverPush(ctx context.Context, name string, d driver.Delivery) {
	ms, ack := d.Measurements, d.Ack
	if ack == nil {
		ack = func(error) {}
	}
	if len(ms) == 0 {
		ack(nil)
		return
	}
	if sp, ok := a.q.(*diskSpool); ok && d.Key != "" && sp.keys.has(d.Key) {
		a.c.pushDuplicates.Add(1)
		a.log.Debug("push delivery already durable in the spool; acknowledged, not stored again", "driver", name, "key", d.Key)
		ack(nil)
		return
	}
	// Back-pressure: wait for the senders to make room in the memory queue
	// or the spool rather than drop older batches.
	need := 0
	for i := range ms {
		need += transport.MeasurementSize(&ms[i], a.cfg.host)
	}
	for ctx.Err() == nil {
		if a.q.roomKept(ctx, need, time.Second) {
			break
		}
	}
	if ctx.Err() != nil {
		ack(notDelivered("the agent is stopping"))
		return
	}
	pa := &pushAck{fn: ack, n: 1, key: d.Key} // the hold of this call, released below
	err := a.addAck(name, ms, pa)
	if err == ErrStopped {
		pa.settle(notDelivered("the agent stopped"))
		return
	}
	pa.settle(nil)
}

// attachLocked attaches the delivery being added to the current batch,
// once per batch; a.mu is held.
func (a *Agent) attachLocked() {
	if a.pushing != nil && !a.pushingInCur {
		a.pushing.hold()
		a.curAcks = append(a.curAcks, a.pushing)
		a.pushingInCur = true
	}
}

// queuedLocked settles or registers the acks of a batch just pushed to the
// store (err: the push failed); a.mu is held.
func (a *Agent) queuedLocked(seq uint64, acks []*pushAck, err error) {
	if len(acks) == 0 {
		return
	}
	switch {
	case err != nil:
		a.takeAcks(seq)
		settleAll(acks, notDelivered("could not store the batch: %v", err))
	case a.cfg.spoolDir != "":
		settleAll(acks, nil) // committed to the spool
	}
	// Without a spool, registered before the push (registerAcks), settled
	// by the sender or by drop-oldest.
}

// keysLocked returns the keys of the deliveries in acks whose last
// measurements are in the batch: all but the one being added; a.mu is held.
func (a *Agent) keysLocked(acks []*pushAck) []string {
	var keys []string
	for _, p := range acks {
		if p.key != "" && p != a.pushing {
			keys = append(keys, p.key)
		}
	}
	return keys
}

// registerAcks keeps a batch's acks until the sender settles it.
func (a *Agent) registerAcks(seq uint64, acks []*pushAck) {
	if len(acks) == 0 || a.cfg.spoolDir != "" {
		return
	}
	a.acksMu.Lock()
	if a.inflight == nil {
		a.inflight = make(map[uint64][]*pushAck)
	}
	a.inflight[seq] = acks
	a.acksMu.Unlock()
}

func (a *Agent) takeAcks(seq uint64) []*pushAck {
	a.acksMu.Lock()
	defer a.acksMu.Unlock()
	acks := a.inflight[seq]
	delete(a.inflight, seq)
	return acks
}

// settleSeq settles the acks of the memory queue's batch seq.
func (a *Agent) settleSeq(seq uint64, err error) {
	if a.cfg.spoolDir != "" {
		return
	}
	settleAll(a.takeAcks(seq), err)
}

// settleRest fails the acks of every batch still unsettled when Run ends.
func (a *Agent) settleRest() {
	a.acksMu.Lock()
	rest := a.inflight
	a.inflight = nil
	a.acksMu.Unlock()
	for _, acks := range rest {
		settleAll(acks, notDelivered("not acknowledged by the publisher when the agent stopped"))
	}
}
