package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/meterkit/meter/driver"
)

// Kept batches.
//
// A batch that holds measurements of a push delivery (driver.Pusher) is
// kept: neither the memory queue's nor the spool's drop-oldest drops it to
// make room, since its source may already have forgotten it (a message
// acknowledged upstream once it was committed to the spool). Newer batches
// of polled drivers drop the oldest batches that are not kept, and are
// dropped themselves when only kept ones are left. A push delivery waits in
// roomKept until the kept batches leave room for it (back-pressure on its
// source: Deliver blocks), counting only kept batches, since it pushes out
// the others. Between that wait and the batch being stored another delivery
// may take the room; the batch is then stored over the bound all the same,
// which bounds the excess by the deliveries of the push sources at that
// moment.

// roomKept waits, for up to wait or until ctx ends, until need more bytes
// of kept batches fit the bound, or no kept batch is held.
func (q *memQueue) roomKept(ctx context.Context, need int, wait time.Duration) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		q.mu.Lock()
		if q.kept == 0 || q.kept+need <= q.maxBytes {
			q.mu.Unlock()
			return true
		}
		freed := q.freed
		q.mu.Unlock()
		select {
		case <-freed:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// dropLocked takes the oldest queued batch that is not kept off the ring,
// if there is one; q.mu is held.
func (q *memQueue) dropLocked() (qbatch, bool) {
	for i := 0; i < q.n; i++ {
		at := (q.head + i) % len(q.items)
		b := q.items[at]
		if b.kept {
			continue
		}
		// Close the gap: move the older batches up by one.
		for j := i; j > 0; j-- {
			q.items[(q.head+j)%len(q.items)] = q.items[(q.head+j-1)%len(q.items)]
		}
		q.popLocked()
		return b, true
	}
	return qbatch{}, false
}

// growLocked doubles the ring, for a kept batch when every place holds a
// kept batch; q.mu is held.
func (q *memQueue) growLocked() {
	items := make([]qbatch, 2*len(q.items))
	for i := 0; i < q.n; i++ {
		items[i] = q.items[(q.head+i)%len(q.items)]
	}
	q.items, q.head = items, 0
}

// roomKept waits, polling, for the spool to have room for need bytes more
// of kept batches.
func (s *diskSpool) roomKept(ctx context.Context, need int, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		if s.lane.RoomKept(int64(need)) {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// checkSpool refuses a push source that requires a spool
// (driver.SpoolRequirer) when there is none.
func checkSpool(c *config) error {
	if c.spoolDir != "" {
		return nil
	}
	for _, s := range c.drivers {
		_, push := s.d.(driver.Pusher)
		if r, ok := s.d.(driver.SpoolRequirer); ok && push && r.RequiresSpool() {
			return fmt.Errorf("agent: driver %q pushes what its source forgets once acknowledged, "+
				"and requires a spool to make it durable first: give the agent one (WithSpool; spool: in the agent's config file)", s.name)
		}
	}
	return nil
}
