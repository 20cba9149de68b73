package agent

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
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/meterkit/meter/internal/boltfile"
	"github.com/meterkit/meter/transport"
)

// SyncPolicy says when the spool forces its writes to disk.
type SyncPolicy struct {
	every time.Duration // 0: every write; <0: never
}

var (
	// SyncAlways makes every batch durable before it is sent: nothing
	// collected is lost when the machine loses power. The default.
	SyncAlways = SyncPolicy{}
	// SyncNever leaves flushing to the operating system: a crash of the agent
	// (kill -9 included) loses nothing; a crash of the machine may lose
	// recent batches or leave the spool file damaged, in which case the agent
	// refuses to start until the file is moved away.
	SyncNever = SyncPolicy{every: -1}
)

// SyncEvery forces writes to disk every d: a crash of the agent loses
// nothing; a crash of the machine may lose up to d's worth of batches or,
// as with SyncNever, leave the spool file damaged.
func SyncEvery(d time.Duration) SyncPolicy { return SyncPolicy{every: d} }

// DefaultSpoolBytes bounds the spool when WithSpool is given no bound.
const DefaultSpoolBytes = 256 << 20

// SpoolOption configures the disk spool.
type SpoolOption func(*spoolConfig)

type spoolConfig struct {
	maxBytes int64
	sync     SyncPolicy
}

// SpoolMaxBytes bounds the spool's batches in bytes (default 256 MiB). When
// a new batch does not fit, the oldest batches are dropped, counted and
// logged.
func SpoolMaxBytes(n int64) SpoolOption { return func(c *spoolConfig) { c.maxBytes = n } }

// SpoolSync sets when writes are forced to disk (default SyncAlways).
func SpoolSync(p SyncPolicy) SpoolOption { return func(c *spoolConfig) { c.sync = p } }

// WithSpool keeps batches in a crash-safe file in dir until the publisher
// acknowledges them, instead of in memory: batches survive a publisher
// outage of any length (up to the bound), an agent restart and kill -9, and
// are resent in order at the next start. Sequence numbers go on across
// restarts, so the publisher can drop a batch it already has. One agent
// process uses a spool directory at a time.
func WithSpool(dir string, opts ...SpoolOption) Option {
	return func(c *config) error {
		if dir == "" {
			return errors.New("agent: WithSpool: empty directory")
		}
		sc := spoolConfig{maxBytes: DefaultSpoolBytes}
		for _, o := range opts {
			o(&sc)
		}
		if sc.maxBytes <= 0 {
			return fmt.Errorf("agent: WithSpool: bound must be positive, got %d", sc.maxBytes)
		}
		c.spoolDir, c.spool = dir, sc
		return nil
	}
}

var (
	bucketBatches = []byte("batches")
	bucketMeta    = []byte("meta")
	keyLastSeq    = []byte("last_seq")
)

// diskSpool is the durable store, on bbolt: one key per batch (its
// sequence number, big-endian, so keys sort in sending order), the value a
// 4-byte measurement count and the envelope's wire encoding. bbolt commits
// are atomic and crash-safe, deletes may come in any order (several batches
// in flight), and the last sequence number is kept in the same transaction
// as the batch.
type diskSpool struct {
	db      *bolt.DB
	path    string
	max     int64
	recycle func(*transport.Envelope)
	onBad   func(seq uint64, err error)

	mu       sync.Mutex
	entries  []spoolEntry // sorted by seq
	inflight map[uint64]bool
	bytes    int64
	last     uint64
	closed   bool
	ready    chan struct{}
	buf      []byte

	stopSync chan struct{}
	syncDone chan struct{}
}

type spoolEntry struct {
	seq   uint64
	size  int64
	count int
}

func openSpool(dir string, sc spoolConfig, recycle func(*transport.Envelope)) (*diskSpool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: spool: %w", err)
	}
	path := filepath.Join(dir, "agent.spool")
	db, err := boltfile.Open(path, sc.sync.every != 0, false)
	if err != nil {
		return nil, fmt.Errorf("agent: spool: %w", err)
	}
	s := &diskSpool{db: db, path: path, max: sc.maxBytes, recycle: recycle,
		inflight: map[uint64]bool{}, ready: make(chan struct{}, 1)}
	err = boltfile.Load(func() error { return loadSpool(db, s) })
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("agent: read spool %s (move it away to start afresh): %w", path, err)
	}
	if sc.sync.every > 0 {
		s.stopSync, s.syncDone = make(chan struct{}), make(chan struct{})
		go s.syncLoop(sc.sync.every)
	}
	return s, nil
}

// loadSpool indexes the spooled batches.
func loadSpool(db *bolt.DB, s *diskSpool) error {
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketBatches)
		if err != nil {
			return err
		}
		m, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := m.Get(keyLastSeq); len(v) == 8 {
			s.last = binary.BigEndian.Uint64(v)
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) < 4 {
				return fmt.Errorf("corrupt entry (key %x, %d bytes)", k, len(v))
			}
			seq := binary.BigEndian.Uint64(k)
			s.entries = append(s.entries, spoolEntry{seq: seq, size: int64(len(v)), count: int(binary.BigEndian.Uint32(v))})
			s.bytes += int64(len(v))
			s.last = max(s.last, seq)
			return nil
		})
	})
}

func (s *diskSpool) syncLoop(every time.Duration) {
	defer close(s.syncDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopSync:
			return
		case <-t.C:
			_ = s.db.Sync()
		}
	}
}

func (s *diskSpool) lastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// push encodes env, stores it and recycles env's memory.
func (s *diskSpool) push(env *transport.Envelope) (droppedBatches, droppedMeasurements int, err error) {
	count := len(env.Measurements)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = binary.BigEndian.AppendUint32(s.buf[:0], uint32(count))
	s.buf, err = transport.AppendEnvelope(s.buf, env)
	s.recycle(env)
	if err != nil {
		return 0, 0, fmt.Errorf("agent: spool: encode batch %d: %w", env.Seq, err)
	}
	size := int64(len(s.buf))
	if size > s.max {
		return 0, 0, fmt.Errorf("agent: spool: batch %d is %d bytes, over the spool bound of %d", env.Seq, size, s.max)
	}
	drop := 0
	freed := int64(0)
	for drop < len(s.entries) && s.bytes-freed+size > s.max {
		freed += s.entries[drop].size
		droppedMeasurements += s.entries[drop].count
		drop++
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBatches)
		for _, e := range s.entries[:drop] {
			if err := b.Delete(seqKey(e.seq)); err != nil {
				return err
			}
		}
		if err := b.Put(seqKey(env.Seq), s.buf); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyLastSeq, seqKey(env.Seq))
	})
	if err != nil {
		return 0, 0, fmt.Errorf("agent: spool %s: write batch %d: %w", s.path, env.Seq, err)
	}
	for _, e := range s.entries[:drop] {
		delete(s.inflight, e.seq)
	}
	s.entries = append(s.entries[drop:], spoolEntry{seq: env.Seq, size: size, count: count})
	s.bytes += size - freed
	s.last = max(s.last, env.Seq)
	signal(s.ready)
	return drop, droppedMeasurements, nil
}

func (s *diskSpool) next(ctx context.Context, sl *slot) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		s.mu.Lock()
		var e *spoolEntry
		for i := range s.entries {
			if !s.inflight[s.entries[i].seq] {
				e = &s.entries[i]
				break
			}
		}
		if e != nil {
			seq := e.seq
			s.inflight[seq] = true
			more := len(s.inflight) < len(s.entries)
			s.mu.Unlock()
			if more {
				signal(s.ready)
			}
			err := s.db.View(func(tx *bolt.Tx) error {
				v := tx.Bucket(bucketBatches).Get(seqKey(seq))
				if len(v) < 4 {
					return fmt.Errorf("entry missing or short (%d bytes)", len(v))
				}
				// Decode copies what it keeps: v is only valid inside the transaction.
				return sl.dec.Decode(v[4:], &sl.buf)
			})
			if err != nil {
				// A batch that cannot be read back is dropped, not resent forever.
				sl.env = &transport.Envelope{Seq: seq}
				if s.onBad != nil {
					s.onBad(seq, err)
				}
				_ = s.done(sl)
				continue
			}
			sl.env = &sl.buf
			return true
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			signal(s.ready)
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-s.ready:
		}
	}
}

func (s *diskSpool) done(sl *slot) error {
	seq := sl.env.Seq
	sl.env = nil
	err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketBatches).Delete(seqKey(seq)) })
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, seq)
	if i, ok := slices.BinarySearchFunc(s.entries, seq, func(e spoolEntry, seq uint64) int {
		return cmp.Compare(e.seq, seq)
	}); ok {
		s.bytes -= s.entries[i].size
		s.entries = slices.Delete(s.entries, i, i+1)
	}
	if err != nil {
		return fmt.Errorf("agent: spool %s: delete batch %d: %w", s.path, seq, err)
	}
	return nil
}

func (s *diskSpool) release(sl *slot) bool {
	s.mu.Lock()
	delete(s.inflight, sl.env.Seq)
	s.mu.Unlock()
	sl.env = nil
	signal(s.ready)
	return true
}

func (s *diskSpool) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

func (s *diskSpool) pendingMeasurements() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.entries {
		n += e.count
	}
	return n
}

func (s *diskSpool) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	signal(s.ready)
}

func (s *diskSpool) shutdown() (kept, lost int, err error) {
	kept = s.pendingMeasurements()
	if s.stopSync != nil {
		close(s.stopSync)
		<-s.syncDone
	}
	err = s.db.Sync()
	if cerr := s.db.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return kept, 0, fmt.Errorf("agent: close spool %s: %w", s.path, err)
	}
	return kept, 0, nil
}
