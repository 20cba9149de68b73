package agent

import (
	"context"
	"sync"

	"github.com/meterkit/meter/transport"
)

// queue is a bounded FIFO of batches awaiting delivery. When full, push
// drops the oldest batch and returns it.
type queue struct {
	mu     sync.Mutex
	items  []*transport.Envelope // ring buffer
	head   int
	n      int
	closed bool
	ready  chan struct{} // signalled (non-blocking) on push and close
}

func newQueue(capacity int) *queue {
	return &queue{items: make([]*transport.Envelope, capacity), ready: make(chan struct{}, 1)}
}

func (q *queue) push(e *transport.Envelope) (dropped *transport.Envelope) {
	q.mu.Lock()
	if q.n == len(q.items) {
		dropped = q.items[q.head]
		q.items[q.head] = nil
		q.head = (q.head + 1) % len(q.items)
		q.n--
	}
	q.items[(q.head+q.n)%len(q.items)] = e
	q.n++
	q.mu.Unlock()
	q.signal()
	return dropped
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop blocks until a batch is queued, or returns false once the queue is
// closed and empty or ctx ends.
func (q *queue) pop(ctx context.Context) (*transport.Envelope, bool) {
	for {
		q.mu.Lock()
		if q.n > 0 {
			e := q.items[q.head]
			q.items[q.head] = nil
			q.head = (q.head + 1) % len(q.items)
			q.n--
			more := q.n > 0 || q.closed
			q.mu.Unlock()
			if more {
				q.signal() // wake another sender
			}
			return e, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			q.signal()
			return nil, false
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-q.ready:
		}
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *queue) takeAll() []*transport.Envelope {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]*transport.Envelope, 0, q.n)
	for q.n > 0 {
		out = append(out, q.items[q.head])
		q.items[q.head] = nil
		q.head = (q.head + 1) % len(q.items)
		q.n--
	}
	return out
}
