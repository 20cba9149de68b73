package publisher

import "sync"

// DefaultDedupWindow is how many recent sequence numbers the publisher
// remembers per agent.
const DefaultDedupWindow = 4096

// dedup remembers, per (tenant, agent), the last n sequence numbers it
// accepted, so that a batch resent after a lost acknowledgement is
// acknowledged again without reaching the stores twice.
type dedup struct {
	mu      sync.Mutex
	n       int
	sources map[string]*window
}

type window struct {
	seen     map[uint64]struct{}
	inflight map[uint64]struct{}
	order    []uint64 // ring of the seqs in seen, oldest at head once full
	head     int
}

func newDedup(n int) *dedup { return &dedup{n: n, sources: map[string]*window{}} }

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

// peekEvict tells which seq add(key, ·) would evict, so that a durable
// store can forget it in the same transaction.
func (d *dedup) peekEvict(key string) (uint64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.window(key)
	if len(w.order) < d.n {
		return 0, false
	}
	return w.order[w.head], true
}

func (d *dedup) window(key string) *window {
	w := d.sources[key]
	if w == nil {
		w = &window{seen: map[uint64]struct{}{}, inflight: map[uint64]struct{}{}}
		d.sources[key] = w
	}
	return w
}

// add records seq as accepted and returns the seq it evicted (ok false if none).
func (d *dedup) add(key string, seq uint64) (evicted uint64, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.window(key)
	delete(w.inflight, seq)
	if _, dup := w.seen[seq]; dup {
		return 0, false
	}
	w.seen[seq] = struct{}{}
	if len(w.order) < d.n {
		w.order = append(w.order, seq)
		return 0, false
	}
	evicted = w.order[w.head]
	delete(w.seen, evicted)
	w.order[w.head] = seq
	w.head = (w.head + 1) % len(w.order)
	return evicted, true
}
