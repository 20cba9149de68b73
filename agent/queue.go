package agent

import (
	"context"
	"sync"

	"github.com/meterkit/meter/transport"
)

// memQueue is a bounded in-memory FIFO of batches. When full, push drops the
// oldest batch.
type memQueue struct {
	mu      sync.Mutex
	items   []*transport.Envelope // ring buffer
	head    int
	n       int
	closed  bool
	ready   chan struct{} // signalled (non-blocking) on push and close
	recycle func(*transport.Envelope)
}

func newMemQueue(capacity int, recycle func(*transport.Envelope)) *memQueue {
	return &memQueue{items: make([]*transport.Envelope, capacity), ready: make(chan struct{}, 1), recycle: recycle}
}

func (q *memQueue) lastSeq() uint64 { return 0 }

func (q *memQueue) push(e *transport.Envelope) (int, int, error) {
	var dropped *transport.Envelope
	q.mu.Lock()
	if q.n == len(q.items) {
		dropped = q.popLocked()
	}
	q.items[(q.head+q.n)%len(q.items)] = e
	q.n++
	q.mu.Unlock()
	signal(q.ready)
	if dropped == nil {
		return 0, 0, nil
	}
	n := len(dropped.Measurements)
	q.recycle(dropped)
	return 1, n, nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (q *memQueue) next(ctx context.Context, s *slot) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		q.mu.Lock()
		if q.n > 0 {
			s.env = q.popLocked()
			more := q.n > 0 || q.closed
			q.mu.Unlock()
			if more {
				signal(q.ready) // wake another sender
			}
			return true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			signal(q.ready)
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-q.ready:
		}
	}
}

func (q *memQueue) done(s *slot) error {
	q.recycle(s.env)
	s.env = nil
	return nil
}

func (q *memQueue) release(s *slot) bool {
	q.recycle(s.env)
	s.env = nil
	return false
}

func (q *memQueue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

func (q *memQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	signal(q.ready)
}

// shutdown empties the queue: what it still holds was never acknowledged
// and is lost with the process.
func (q *memQueue) shutdown() (kept, lost int, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n > 0 {
		lost += len(q.popLocked().Measurements)
	}
	return 0, lost, nil
}

// popLocked takes the oldest batch off the ring; q.mu is held and q.n > 0.
func (q *memQueue) popLocked() *transport.Envelope {
	e := q.items[q.head]
	q.items[q.head] = nil
	q.head = (q.head + 1) % len(q.items)
	q.n--
	return e
}
