package publisher

import (
	"sync"
	"time"
)

// Defaults of the de-duplication window (WithDedupWindow).
const (
	// DefaultDedupWindow is how many recent sequence numbers the publisher
	// remembers per agent, however old.
	DefaultDedupWindow = 4096
	// DefaultDedupAge is how long the publisher remembers every sequence
	// number it accepted, however many: 10 minutes, more than twice
	// transport/seal's default window of 180 s, in which a captured sealed
	// envelope can be replayed.
	DefaultDedupAge = 10 * time.Minute
)

// dedupAgeFactor bounds what the age keeps beyond the count, per agent:
// an agent accepted more than dedupAgeFactor*n batches within the age has
// its oldest forgotten anyway, so that memory stays bounded.
const dedupAgeFactor = 64

// dedup remembers, per (tenant, agent), the sequence numbers it accepted
// and when, so that a batch sent again (a resend after a lost
// acknowledgement, or a replay) is acknowledged again without reaching the
// stores twice. A seq is remembered while it is among the last n accepted,
// or was accepted less than age ago (up to dedupAgeFactor*n seqs).
type dedup struct {
	mu      sync.Mutex
	n       int
	age     int64 // nanoseconds
	now     func() time.Time
	sources map[string]*window
}

type window struct {
	seen     map[uint64]int64 // seq -> accepted at, unix nanoseconds
	inflight map[uint64]struct{}
	order    []uint64 // the seqs in seen, oldest first from head
	head     int
}

func newDedup(n int, age time.Duration) *dedup {
	return &dedup{n: n, age: int64(age), now: time.Now, sources: map[string]*window{}}
}

func sourceKey(tenant, agent string) string { return tenant + "\x00" + agent }

// claim is what reserve found.
type claim int

const (
	claimed  claim = iota // new: this worker handles it
	accepted              // accepted before: acknowledge again, deliver nothing
	busy                  // another worker handles it right now: the outcome is not known yet
)

// reserve claims seq for one worker. A batch accepted before is a duplicate
// (its ack was lost). A batch another worker is handling right now (the agent
// resent it meanwhile) is busy: it must not be acknowledged yet, since that
// first copy may still fail. A claimed seq is followed by add (accepted) or
// release (not accepted).
func (d *dedup) reserve(key string, seq uint64) claim {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.window(key)
	if _, ok := w.seen[seq]; ok {
		return accepted
	}
	if _, ok := w.inflight[seq]; ok {
		return busy
	}
	w.inflight[seq] = struct{}{}
	return claimed
}

// release gives up a reservation: the batch was not accepted.
func (d *dedup) release(key string, seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.window(key).inflight, seq)
}

func (d *dedup) window(key string) *window {
	w := d.sources[key]
	if w == nil {
		w = &window{seen: map[uint64]int64{}, inflight: map[uint64]struct{}{}}
		d.sources[key] = w
	}
	return w
}

// peekEvict appends to dst the seqs add(key, ·, at) would forget, so that
// a durable store can forget them in the same transaction.
func (d *dedup) peekEvict(dst []uint64, key string, at int64) []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.window(key)
	for i := w.head; i < len(w.order) && d.evictableFrom(w, i, at); i++ {
		dst = append(dst, w.order[i])
	}
	return dst
}

// evictableFrom tells whether the seq at index i of w.order is forgotten
// when one more is added at time at (unix nanoseconds), those before it
// forgotten already: whether n remain without it, and it is older than the
// age (or the age keeps too many).
func (d *dedup) evictableFrom(w *window, i int, at int64) bool {
	kept := len(w.order) - i // remain without it, with the new one
	if kept < d.n {
		return false
	}
	return at-w.seen[w.order[i]] > d.age || kept >= dedupAgeFactor*d.n
}

// add records seq as accepted at time at (unix nanoseconds), forgets what
// falls out of the window, and appends the seqs it forgot to dst.
func (d *dedup) add(dst []uint64, key string, seq uint64, at int64) []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.window(key)
	delete(w.inflight, seq)
	if _, dup := w.seen[seq]; dup {
		return dst
	}
	for w.head < len(w.order) && d.evictableFrom(w, w.head, at) {
		old := w.order[w.head]
		delete(w.seen, old)
		dst = append(dst, old)
		w.head++
	}
	if w.head > 1024 && w.head > len(w.order)/2 {
		w.order = append(w.order[:0], w.order[w.head:]...)
		w.head = 0
	}
	w.seen[seq] = at
	w.order = append(w.order, seq)
	return dst
}

// expire forgets key's seqs that are out of the window at time at (unix
// nanoseconds), with no seq added, and appends them to dst.
func (d *dedup) expire(dst []uint64, key string, at int64) []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.window(key)
	for w.head < len(w.order) {
		old := w.order[w.head]
		left := len(w.order) - w.head - 1 // kept without it
		if left < d.n || at-w.seen[old] <= d.age && left < dedupAgeFactor*d.n {
			break
		}
		delete(w.seen, old)
		dst = append(dst, old)
		w.head++
	}
	return dst
}

// nowNanos is the dedup's clock in unix nanoseconds.
func (d *dedup) nowNanos() int64 { return d.now().UnixNano() }
