package agent

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/meterkit/meter/transport"
)

// memQueue is a bounded in-memory FIFO of batches, each held in its wire
// encoding (about a fifth of the memory of decoded measurements). It is
// bounded in batches and in bytes; the bytes count the batches being sent
// too, until they are acknowledged. When a new batch does not fit, push
// drops the oldest batches not being sent.
type memQueue struct {
	mu       sync.Mutex
	items    []qbatch // ring buffer
	head     int
	n        int
	bytes    int // of the batches held: queued and being sent
	kept     int // of those bytes, the kept batches' (keep.go)
	maxBytes int
	closed   bool
	ready    chan struct{}                     // signalled (non-blocking) on push and close
	freed    chan struct{}                     // closed, and replaced, when bytes are freed
	raw      bool                              // senders take the frames as they are
	onBad    func(err error, measurements int) // a queued batch that does not decode, dropped
	onDrop   func(seq uint64)                  // a batch dropped to make room (called with mu held)
	recycle  func(*transport.Envelope)
	frames   sync.Pool            // *[]byte: frames of forgotten batches, reused by push
	sending  map[uint64]time.Time // when the batches being sent were queued, by seq
}

// qbatch is one queued batch.
type qbatch struct {
	frame []byte
	seq   uint64
	count int
	kept  bool      // a push delivery's: never dropped to make room
	at    time.Time // when it was queued
}

func newMemQueue(capacity, maxBytes int, raw bool, recycle func(*transport.Envelope)) *memQueue {
	return &memQueue{items: make([]qbatch, capacity), maxBytes: maxBytes, raw: raw,
		ready: make(chan struct{}, 1), freed: make(chan struct{}), recycle: recycle, sending: map[uint64]time.Time{}}
}

func (q *memQueue) lastSeq() uint64 { return 0 }

// push encodes env, recycles its memory, and queues the frame, dropping
// the oldest queued batches that are not kept while the bound is exceeded.
// When only kept batches are left, a kept batch is queued over the bound
// (push deliveries wait in roomKept first) and another one is dropped.
func (q *memQueue) push(e *transport.Envelope, size int, _ []string, kept bool) (droppedBatches, droppedMeasurements int, err error) {
	frame, err := transport.AppendEnvelope(q.getFrame(size), e)
	b := qbatch{frame: frame, seq: e.Seq, count: len(e.Measurements), kept: kept, at: time.Now()}
	q.recycle(e)
	if err != nil {
		return 0, 0, fmt.Errorf("agent: %w", err)
	}
	q.mu.Lock()
	for q.n > 0 && (q.n == len(q.items) || q.bytes+len(b.frame) > q.maxBytes) {
		old, ok := q.dropLocked()
		if !ok {
			break // only kept batches are left
		}
		q.bytes -= len(old.frame)
		droppedBatches++
		droppedMeasurements += old.count
		q.putFrame(old.frame)
		if q.onDrop != nil {
			q.onDrop(old.seq)
		}
	}
	if q.n > 0 && (q.n == len(q.items) || q.bytes+len(b.frame) > q.maxBytes) && !kept {
		q.mu.Unlock()
		q.putFrame(b.frame)
		return droppedBatches + 1, droppedMeasurements + b.count, nil
	}
	if q.n == len(q.items) {
		q.growLocked()
	}
	q.items[(q.head+q.n)%len(q.items)] = b
	q.n++
	q.bytes += len(b.frame)
	if kept {
		q.kept += len(b.frame)
	}
	q.mu.Unlock()
	signal(q.ready)
	return droppedBatches, droppedMeasurements, nil
}

// room waits, for up to wait or until ctx ends, until need more bytes fit
// the bound, or the queue holds nothing (a collection larger than the
// bound). Batches being sent count: their acknowledgement makes room.
func (q *memQueue) room(ctx context.Context, need int, wait time.Duration) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		if q.bytes == 0 || q.bytes+need <= q.maxBytes {
			q.mu.Unlock()
			return true
		}
		freed := q.freed
		q.mu.Unlock()
		if timer == nil {
			if wait <= 0 {
				return false
			}
			timer = time.NewTimer(wait)
		}
		select {
		case <-freed:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// decodeLimits read back what the agent encoded itself: no limit but the
// frame's.
var decodeLimits = transport.Limits{MaxFrameSize: math.MaxInt32, MaxMeasurements: math.MaxInt32,
	MaxLabels: math.MaxInt32, MaxStringLen: math.MaxInt32}

func (q *memQueue) next(ctx context.Context, s *slot) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		q.mu.Lock()
		if q.n > 0 {
			b := q.popLocked()
			q.sending[b.seq] = b.at
			more := q.n > 0 || q.closed
			q.mu.Unlock()
			if more {
				signal(q.ready) // wake another sender
			}
			s.frame, s.seq, s.count, s.env, s.kept = b.frame, b.seq, b.count, nil, b.kept
			if !q.raw {
				s.dec.Limits = decodeLimits
				if err := s.dec.Decode(b.frame, &s.buf); err != nil {
					// The agent's own encoding: never, but not sent forever either.
					q.forget(s)
					if q.onBad != nil {
						q.onBad(fmt.Errorf("agent: queued batch seq %d does not decode: %w", b.seq, err), b.count)
					}
					continue
				}
				s.env = &s.buf
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

// forget frees the memory of the batch in s.
func (q *memQueue) forget(s *slot) {
	q.mu.Lock()
	q.bytes -= len(s.frame)
	if s.kept {
		q.kept -= len(s.frame)
	}
	delete(q.sending, s.seq)
	close(q.freed)
	q.freed = make(chan struct{})
	q.mu.Unlock()
	q.putFrame(s.frame) // the sender is done with it
	s.frame, s.env = nil, nil
}

// getFrame returns an empty buffer for a frame of about size bytes, from
// the frames of batches already forgotten where one is large enough.
func (q *memQueue) getFrame(size int) []byte {
	if p, ok := q.frames.Get().(*[]byte); ok && cap(*p) >= size {
		return (*p)[:0]
	}
	return make([]byte, 0, size)
}

func (q *memQueue) putFrame(b []byte) {
	if cap(b) > 0 {
		q.frames.Put(&b)
	}
}

func (q *memQueue) done(s *slot) error {
	q.forget(s)
	return nil
}

func (q *memQueue) release(s *slot) bool {
	q.forget(s)
	return false
}

func (q *memQueue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// oldest returns when the oldest batch held, queued or being sent, was
// queued; zero when none is.
func (q *memQueue) oldest() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	var t time.Time
	if q.n > 0 {
		t = q.items[q.head].at
	}
	for _, at := range q.sending {
		if t.IsZero() || at.Before(t) {
			t = at
		}
	}
	return t
}

func (q *memQueue) pendingBytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
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
		b := q.popLocked()
		q.bytes -= len(b.frame)
		if b.kept {
			q.kept -= len(b.frame)
		}
		lost += b.count
	}
	return 0, lost, nil
}

// popLocked takes the oldest batch off the ring; q.mu is held and q.n > 0.
func (q *memQueue) popLocked() qbatch {
	b := q.items[q.head]
	q.items[q.head] = qbatch{}
	q.head = (q.head + 1) % len(q.items)
	q.n--
	return b
}
