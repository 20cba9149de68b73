package publisher

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/boltfile"
	"github.com/meterkit/meter/transport"
)

// DefaultSpoolBytes bounds each sink's spool lane when WithSpool is given no bound.
const DefaultSpoolBytes = 256 << 20

// SpoolOption configures the publisher's spool.
type SpoolOption func(*spoolConfig)

type spoolConfig struct {
	maxBytes int64
	noSync   bool
}

// SpoolMaxBytes bounds each sink's lane in bytes (default 256 MiB). When a
// batch does not fit, the lane's oldest batches are dropped, counted and logged.
func SpoolMaxBytes(n int64) SpoolOption { return func(c *spoolConfig) { c.maxBytes = n } }

// SpoolNoSync leaves flushing to the operating system: a crash of the
// publisher process loses nothing, a crash of the machine may lose what was
// acknowledged in the last seconds. Without it every batch is forced to
// disk before the agent is acknowledged.
func SpoolNoSync() SpoolOption { return func(c *spoolConfig) { c.noSync = true } }

// WithSpool makes the publisher acknowledge a batch once it is durably
// stored in dir, in one lane per sink, rather than once every sink accepted
// it. Each lane is delivered to its sink by its own goroutine, in order, with
// exponential backoff and jitter while the sink fails, so that a slow or
// failing store stalls neither the agents nor the other stores. The
// de-duplication window is kept in the same file, so a publisher restarted
// after kill -9 still recognises batches it already has. One publisher
// process uses a spool directory at a time.
func WithSpool(dir string, opts ...SpoolOption) Option {
	return func(c *config) error {
		if dir == "" {
			return errors.New("publisher: WithSpool: empty directory")
		}
		sc := spoolConfig{maxBytes: DefaultSpoolBytes}
		for _, o := range opts {
			o(&sc)
		}
		if sc.maxBytes <= 0 {
			return fmt.Errorf("publisher: WithSpool: bound must be positive, got %d", sc.maxBytes)
		}
		c.spoolDir, c.spool = dir, sc
		return nil
	}
}

var (
	bucketLanes = []byte("lanes")
	bucketDedup = []byte("dedup")
)

// spool is the publisher's durable store on bbolt: bucket lanes/<sink>
// holds that sink's pending batches (key: an increasing 8-byte id; value: a
// 4-byte measurement count and the envelope's wire encoding); bucket
// dedup/<tenant NUL agent> holds the accepted sequence numbers of the window
// (key: the 8-byte seq; value: when it was accepted, 8-byte big-endian unix
// nanoseconds, or empty in files written before that was kept: accepted at
// load time).
type spool struct {
	db    *bolt.DB
	path  string
	max   int64
	mu    sync.Mutex // guards lanes' entries, bytes and delivered
	lanes map[string]*lane
	buf   []byte
	// evicted is scratch for the seqs leaving the de-duplication window.
	evicted []uint64

	// marks records which spooled batches a sink has taken, in a second
	// bbolt file written without fsync. Forgetting a delivered batch is then
	// a plain write — microseconds, surviving kill -9 — rather than an
	// fsynced commit that waits behind the workers' appends: the window in
	// which a killed publisher delivers a batch again shrinks accordingly.
	// A machine crash may lose or damage this file; it is then made anew,
	// which can only cause a batch to be delivered again, never lost. Marked
	// batches are deleted from the main file in batches (compaction).
	marks     *bolt.DB
	marksPath string
}

type lane struct {
	name      string
	entries   []laneEntry // not yet delivered, by id
	bytes     int64
	nextID    uint64
	ready     chan struct{}
	delivered []uint64 // marked delivered, still in the main file
}

// compactEvery is how many delivered batches a lane marks before deleting
// them from the main file.
const compactEvery = 64

type laneEntry struct {
	id    uint64
	size  int64
	count int
	// doubt: an earlier attempt may have reached the store (it failed, or
	// the entry comes from an earlier run, which may have been killed while
	// writing it, or whose acknowledgement to the agent may have been lost).
	doubt bool
}

func openSpool(dir string, sc spoolConfig, sinks []string, dd *dedup) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("publisher: spool: %w", err)
	}
	path := filepath.Join(dir, "publisher.spool")
	db, err := boltfile.Open(path, sc.noSync, false)
	if err != nil {
		return nil, fmt.Errorf("publisher: spool: %w", err)
	}
	s := &spool{db: db, path: path, max: sc.maxBytes, lanes: map[string]*lane{}}
	err = boltfile.Load(func() error { return s.load(sinks, dd) })
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("publisher: read spool %s (move it away to start afresh): %w", path, err)
	}
	if err := s.openMarks(filepath.Join(dir, "publisher.delivered")); err != nil {
		db.Close()
		return nil, err
	}
	for _, l := range s.lanes {
		if err := s.compact(l); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// load indexes the lanes of sinks and fills dd with the de-duplication
// window.
func (s *spool) load(sinks []string, dd *dedup) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		lanes, err := tx.CreateBucketIfNotExists(bucketLanes)
		if err != nil {
			return err
		}
		for _, name := range sinks {
			b, err := lanes.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			l := &lane{name: name, ready: make(chan struct{}, 1)}
			err = b.ForEach(func(k, v []byte) error {
				if len(k) != 8 || len(v) < 4 {
					return fmt.Errorf("lane %q: corrupt entry", name)
				}
				id := binary.BigEndian.Uint64(k)
				l.entries = append(l.entries, laneEntry{id: id, size: int64(len(v)), count: int(binary.BigEndian.Uint32(v)), doubt: true})
				l.bytes += int64(len(v))
				l.nextID = id + 1
				return nil
			})
			if err != nil {
				return err
			}
			s.lanes[name] = l
		}
		dedupB, err := tx.CreateBucketIfNotExists(bucketDedup)
		if err != nil {
			return err
		}
		return dedupB.ForEachBucket(func(key []byte) error {
			return loadDedup(dedupB.Bucket(key), string(key), dd)
		})
	})
}

// loadDedup fills dd with one source's window, oldest first, and forgets
// in b what falls out of it.
func loadDedup(b *bolt.Bucket, key string, dd *dedup) error {
	type entry struct {
		seq uint64
		at  int64
	}
	var es []entry
	var untimed []uint64
	loaded := dd.nowNanos()
	err := b.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return nil
		}
		e := entry{seq: binary.BigEndian.Uint64(k), at: loaded}
		if len(v) == 8 {
			e.at = int64(binary.BigEndian.Uint64(v))
		} else {
			untimed = append(untimed, e.seq)
		}
		es = append(es, e)
		return nil
	})
	if err != nil {
		return err
	}
	for _, seq := range untimed { // from now on, they age
		if err := b.Put(u64(seq), u64(uint64(loaded))); err != nil {
			return err
		}
	}
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(a.at, b.at) })
	var gone []uint64
	for _, e := range es {
		gone = dd.add(gone, key, e.seq, e.at)
	}
	gone = dd.expire(gone, key, loaded)
	for _, seq := range gone {
		if err := b.Delete(u64(seq)); err != nil {
			return err
		}
	}
	return nil
}

// openMarks opens the delivered-marks file and takes the marked batches out
// of their lanes. A file that cannot be read is replaced by an empty one.
func (s *spool) openMarks(path string) error {
	s.marksPath = path
	marked, err := readMarks(path)
	if err != nil {
		// Damaged (a machine crash without fsync): start afresh. The batches it
		// marked are delivered again; none is lost.
		if rmErr := os.Remove(path); rmErr != nil && !os.IsNotExist(rmErr) {
			return fmt.Errorf("publisher: spool marks %s unreadable (%v) and cannot be removed: %w", path, err, rmErr)
		}
		marked = nil
	}
	m, err := boltfile.Open(path, true, false)
	if err != nil {
		return fmt.Errorf("publisher: spool marks: %w", err)
	}
	s.marks = m
	for name, ids := range marked {
		l := s.lanes[name]
		if l == nil {
			continue
		}
		for _, id := range ids {
			if i, ok := l.find(id); ok {
				l.bytes -= l.entries[i].size
				l.entries = slices.Delete(l.entries, i, i+1)
			}
			l.delivered = append(l.delivered, id)
		}
	}
	return nil
}

// readMarks reads the marks file if there is one; damaged pages are an
// error.
func readMarks(path string) (marked map[string][]uint64, err error) {
	if _, statErr := os.Stat(path); os.IsNotExist(statErr) {
		return nil, nil
	}
	err = boltfile.Load(func() error {
		m, err := boltfile.Open(path, false, true)
		if err != nil {
			return err
		}
		defer m.Close()
		marked = map[string][]uint64{}
		return m.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				return b.ForEach(func(k, _ []byte) error {
					if len(k) == 8 {
						marked[string(name)] = append(marked[string(name)], binary.BigEndian.Uint64(k))
					}
					return nil
				})
			})
		})
	})
	return marked, err
}

func (l *lane) find(id uint64) (int, bool) {
	return slices.BinarySearchFunc(l.entries, id, func(e laneEntry, id uint64) int { return cmp.Compare(e.id, id) })
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// dropped reports what a lane lost to make room.
type dropped struct {
	lane                  string
	batches, measurements int
}

// append stores batch (from env's header) in every lane and records seq in
// the de-duplication window, all in one transaction.
func (s *spool) append(env *transport.Envelope, batch []meter.Measurement, dd *dedup, key string) ([]dropped, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hdr := *env
	hdr.Measurements = batch
	hdr.Sealed, hdr.Auth = nil, nil
	var err error
	s.buf = binary.BigEndian.AppendUint32(s.buf[:0], uint32(len(batch)))
	if s.buf, err = transport.AppendEnvelope(s.buf, &hdr); err != nil {
		return nil, fmt.Errorf("publisher: spool: encode batch %d: %w", env.Seq, err)
	}
	size := int64(len(s.buf))
	if size > s.max {
		return nil, fmt.Errorf("publisher: spool: batch of %d bytes is over the lane bound of %d", size, s.max)
	}
	at := dd.nowNanos()
	evicted := dd.peekEvict(s.evicted[:0], key, at)
	var drops []dropped
	cut := map[string]int{}
	for name, l := range s.lanes {
		n, freed, d := 0, int64(0), dropped{lane: name}
		for n < len(l.entries) && l.bytes-freed+size > s.max {
			freed += l.entries[n].size
			d.measurements += l.entries[n].count
			n++
		}
		if n > 0 {
			d.batches = n
			drops = append(drops, d)
			cut[name] = n
		}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		lanes := tx.Bucket(bucketLanes)
		for name, l := range s.lanes {
			b := lanes.Bucket([]byte(name))
			for _, e := range l.entries[:cut[name]] {
				if err := b.Delete(u64(e.id)); err != nil {
					return err
				}
			}
			if err := b.Put(u64(l.nextID), s.buf); err != nil {
				return err
			}
		}
		db, err := tx.Bucket(bucketDedup).CreateBucketIfNotExists([]byte(key))
		if err != nil {
			return err
		}
		for _, seq := range evicted {
			if err := db.Delete(u64(seq)); err != nil {
				return err
			}
		}
		return db.Put(u64(env.Seq), u64(uint64(at)))
	})
	if err != nil {
		return nil, fmt.Errorf("publisher: spool %s: write batch %d: %w", s.path, env.Seq, err)
	}
	s.evicted = dd.add(evicted[:0], key, env.Seq, at)
	for _, l := range s.lanes {
		n := cut[l.name]
		for _, e := range l.entries[:n] {
			l.bytes -= e.size
		}
		l.entries = append(l.entries[n:], laneEntry{id: l.nextID, size: size, count: len(batch)})
		l.bytes += size
		l.nextID++
		select {
		case l.ready <- struct{}{}:
		default:
		}
	}
	return drops, nil
}

// first waits for the lane's oldest batch and decodes it into env with dec.
// It returns the batch's id in the lane and whether it is in doubt.
func (s *spool) first(ctx context.Context, l *lane, dec *transport.Decoder, env *transport.Envelope) (id uint64, doubt, ok bool, err error) {
	for {
		s.mu.Lock()
		if len(l.entries) > 0 {
			id, doubt := l.entries[0].id, l.entries[0].doubt
			s.mu.Unlock()
			err := s.db.View(func(tx *bolt.Tx) error {
				v := tx.Bucket(bucketLanes).Bucket([]byte(l.name)).Get(u64(id))
				if len(v) < 4 {
					return fmt.Errorf("entry %d missing", id)
				}
				return dec.Decode(v[4:], env) // copies what it keeps
			})
			return id, doubt, true, err
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, false, false, nil
		case <-l.ready:
		}
	}
}

// doubt records that an attempt to deliver the lane's batch id may have
// reached the store.
func (s *spool) doubt(l *lane, id uint64) {
	s.mu.Lock()
	if i, ok := l.find(id); ok {
		l.entries[i].doubt = true
	}
	s.mu.Unlock()
}

// remove forgets a lane's batch once its sink took it (or refused it for
// good): it marks the batch delivered, and every compactEvery batches, or
// when the lane runs empty, deletes the marked batches from the main file.
func (s *spool) remove(l *lane, id uint64) error {
	err := s.marks.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(l.name))
		if err != nil {
			return err
		}
		return b.Put(u64(id), nil)
	})
	s.mu.Lock()
	if i, ok := l.find(id); ok {
		l.bytes -= l.entries[i].size
		l.entries = slices.Delete(l.entries, i, i+1)
	}
	l.delivered = append(l.delivered, id)
	due := len(l.delivered) >= compactEvery || len(l.entries) == 0
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("publisher: spool marks %s: mark batch %d of lane %q delivered: %w", s.marksPath, id, l.name, err)
	}
	if due {
		return s.compact(l)
	}
	return nil
}

// compact deletes the lane's delivered batches from the main file, then
// their marks.
func (s *spool) compact(l *lane) error {
	s.mu.Lock()
	ids := slices.Clone(l.delivered)
	s.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLanes).Bucket([]byte(l.name))
		for _, id := range ids {
			if err := b.Delete(u64(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("publisher: spool %s: compact lane %q: %w", s.path, l.name, err)
	}
	err = s.marks.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(l.name))
		if b == nil {
			return nil
		}
		for _, id := range ids {
			if err := b.Delete(u64(id)); err != nil {
				return err
			}
		}
		return nil
	})
	s.mu.Lock()
	l.delivered = slices.DeleteFunc(l.delivered, func(id uint64) bool { return slices.Contains(ids, id) })
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("publisher: spool marks %s: %w", s.marksPath, err)
	}
	return nil
}

func (s *spool) pending(name string) (batches, measurements int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lanes[name]
	if l == nil {
		return 0, 0
	}
	for _, e := range l.entries {
		measurements += e.count
	}
	return len(l.entries), measurements
}

func (s *spool) close() error {
	var err error
	if s.marks != nil {
		for _, l := range s.lanes {
			err = errors.Join(err, s.compact(l))
		}
		err = errors.Join(err, s.marks.Close())
	}
	err = errors.Join(err, s.db.Sync())
	if cerr := s.db.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("publisher: close spool %s: %w", s.path, err)
	}
	return nil
}
