package spool

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/meterkit/meter/internal/option"
	"github.com/meterkit/meter/transport"
)

// SyncPolicy says when the spool forces its writes to disk.
type SyncPolicy struct {
	every time.Duration // 0: every write; <0: never
}

var (
	// SyncAlways forces every write to disk before it returns: nothing
	// stored is lost when the machine loses power. The default.
	SyncAlways = SyncPolicy{}
	// SyncNever leaves flushing to the operating system: a crash of the
	// process (kill -9 included) loses nothing; a crash of the machine may
	// lose recent writes or leave the spool file damaged, in which case it
	// is refused at the next start until it is moved away.
	SyncNever = SyncPolicy{every: -1}
)

// SyncEvery forces writes to disk every d: a crash of the process loses
// nothing; a crash of the machine may lose up to d's worth of writes or, as
// with SyncNever, leave the spool file damaged. SyncEvery(0) is SyncAlways.
func SyncEvery(d time.Duration) SyncPolicy {
	if d <= 0 {
		return SyncAlways
	}
	return SyncPolicy{every: d}
}

// String describes the policy: "always", "never" or "every 100ms".
func (p SyncPolicy) String() string {
	switch {
	case p.every == 0:
		return "always"
	case p.every < 0:
		return "never"
	}
	return "every " + p.every.String()
}

// DefaultMaxBytes bounds each lane when no bound is given.
const DefaultMaxBytes = 256 << 20

// Config is what the options set.
type Config struct {
	MaxBytes int64 // bound of each lane, in bytes of stored entries
	Sync     SyncPolicy
}

// Option configures a spool.
type Option func(*Config) error

// MaxBytes bounds each lane (0: DefaultMaxBytes). When a batch does not
// fit, the lane's oldest batches are dropped to make room. A negative bound
// is an error naming the option.
func MaxBytes(n int64) Option {
	return func(c *Config) error { return option.Set(&c.MaxBytes, "SpoolMaxBytes", n, DefaultMaxBytes) }
}

// Sync sets when writes are forced to disk (default SyncAlways).
func Sync(p SyncPolicy) Option { return func(c *Config) error { c.Sync = p; return nil } }

// NewConfig applies opts to the defaults.
func NewConfig(opts ...Option) (Config, error) {
	c := Config{MaxBytes: DefaultMaxBytes}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return Config{}, err
		}
	}
	return c, nil
}

// Layout says where a spool lives.
type Layout struct {
	// Path is the spool file.
	Path string
	// Marks, when set, is the delivered-marks file: Done marks a batch there,
	// without fsync, and the marked batches are deleted from the spool file
	// in groups. Without it, Done deletes the batch at once.
	Marks string
	// Lanes lists the lanes, each with the bucket path that holds it.
	Lanes []LaneSpec
	// Others, when set, is the bucket path whose nested buckets hold lanes:
	// those no LaneSpec names (a consumer no longer configured) are opened
	// detached, named by their buckets, so that their batches are kept,
	// counted, and delivered if the consumer returns (Attach).
	Others []string
}

// LaneSpec names a lane and the bucket (a path of nested bucket names) that
// holds its batches.
type LaneSpec struct {
	Name   string
	Bucket []string
	// Detached: the lane takes no appends; its batches are kept and handed
	// out by Next as any lane's (Attach and Detach change it).
	Detached bool
}

// Spool is an open spool file. Its methods may be called concurrently.
type Spool struct {
	db    *bolt.DB
	path  string
	max   int64
	mu    sync.Mutex // guards lanes' entries and the fields below
	lanes []*Lane
	buf   []byte
	ends  []int // where each batch of an append ends in buf
	stop  bool  // no more appends: Next returns false once idle

	marks     *bolt.DB
	marksPath string

	stopSync, syncDone chan struct{}
	closeOnce          sync.Once
	closeErr           error
}

// Lane is one consumer's queue of batches, oldest first.
type Lane struct {
	s         *Spool
	name      string
	bucket    []string
	entries   []entry // not yet delivered, by id
	bytes     int64
	keptBytes int64 // of the entries stored with AppendKept
	nextID    uint64
	ready     chan struct{}
	delivered []uint64 // marked delivered, still in the spool file
	detached  bool     // takes no appends (LaneSpec.Detached, Detach)
}

type entry struct {
	id       uint64
	size     int64
	count    int
	doubt    bool
	inflight bool
	kept     bool      // AppendKept: never dropped to make room
	at       time.Time // appended; for a batch of an earlier run, when the spool was opened
}

// Entry is a batch handed out by Next.
type Entry struct {
	ID    uint64
	Count int // measurements in the batch
	// Doubt: an earlier attempt may have reached the consumer's store (it
	// failed, or the batch comes from an earlier run of the process).
	Doubt bool
}

// Dropped reports what a lane lost to make room for an append.
type Dropped struct {
	Lane                  string
	Batches, Measurements int
}

// compactEvery is how many delivered batches a lane marks before deleting
// them from the spool file.
const compactEvery = 64

// Open opens (or makes) the spool of l. Batches found in it are in doubt.
// A file held by another process, or too damaged to read, is an error naming
// it.
func Open(l Layout, c Config) (*Spool, error) {
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	db, err := openFile(l.Path, c.Sync.every != 0, false)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{db: db, path: l.Path, max: c.MaxBytes}
	for _, ls := range l.Lanes {
		if len(ls.Bucket) == 0 {
			db.Close()
			return nil, fmt.Errorf("spool %s: lane %q has no bucket", l.Path, ls.Name)
		}
		s.lanes = append(s.lanes, &Lane{s: s, name: ls.Name, bucket: ls.Bucket, ready: make(chan struct{}, 1), detached: ls.Detached})
	}
	if err := load(func() error { return s.others(l.Others) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("spool: read %s (move it away to start afresh): %w", l.Path, err)
	}
	if err := load(s.index); err != nil {
		db.Close()
		return nil, fmt.Errorf("spool: read %s (move it away to start afresh): %w", l.Path, err)
	}
	if l.Marks != "" {
		if err := s.openMarks(l.Marks); err != nil {
			db.Close()
			return nil, err
		}
		for _, ln := range s.lanes {
			if err := s.compact(ln); err != nil {
				s.Close()
				return nil, err
			}
		}
	}
	if c.Sync.every > 0 {
		s.stopSync, s.syncDone = make(chan struct{}), make(chan struct{})
		go s.syncLoop(c.Sync.every)
	}
	return s, nil
}

// Path is the spool file's path.
func (s *Spool) Path() string { return s.path }

// Lane returns the lane named name, or nil.
func (s *Spool) Lane(name string) *Lane {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lanes {
		if l.name == name {
			return l
		}
	}
	return nil
}

// bucket returns (making it if mk) the bucket at path, or nil.
func bucket(tx *bolt.Tx, path []string, mk bool) (*bolt.Bucket, error) {
	var b *bolt.Bucket
	for i, name := range path {
		var next *bolt.Bucket
		var err error
		if i == 0 {
			if next = tx.Bucket([]byte(name)); next == nil && mk {
				next, err = tx.CreateBucket([]byte(name))
			}
		} else if next = b.Bucket([]byte(name)); next == nil && mk {
			next, err = b.CreateBucket([]byte(name))
		}
		if err != nil || next == nil {
			return nil, err
		}
		b = next
	}
	return b, nil
}

// index makes the lanes' buckets and indexes their batches.
func (s *Spool) index() error {
	opened := time.Now()
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, l := range s.lanes {
			if err := l.index(tx, opened); err != nil {
				return err
			}
		}
		return nil
	})
}

// index makes the lane's bucket and indexes its batches, all in doubt.
func (l *Lane) index(tx *bolt.Tx, opened time.Time) error {
	b, err := bucket(tx, l.bucket, true)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error {
		if len(k) != 8 || len(v) < 4 {
			return fmt.Errorf("lane %q: corrupt entry (key %x, %d bytes)", l.name, k, len(v))
		}
		id := binary.BigEndian.Uint64(k)
		count, kept := header(v)
		l.entries = append(l.entries, entry{id: id, size: int64(len(v)), count: count, doubt: true, kept: kept, at: opened})
		l.bytes += int64(len(v))
		if kept {
			l.keptBytes += int64(len(v))
		}
		l.nextID = id + 1
		return nil
	})
}

// openMarks opens the delivered-marks file and takes the marked batches out
// of their lanes. A file that cannot be read is replaced by an empty one.
func (s *Spool) openMarks(path string) error {
	s.marksPath = path
	marked, err := readMarks(path)
	if err != nil {
		// Damaged (a machine crash without fsync): start afresh. The batches it
		// marked are delivered again; none is lost.
		if rmErr := os.Remove(path); rmErr != nil && !os.IsNotExist(rmErr) {
			return fmt.Errorf("spool: marks %s unreadable (%v) and cannot be removed: %w", path, err, rmErr)
		}
		marked = nil
	}
	m, err := openFile(path, true, false)
	if err != nil {
		return fmt.Errorf("spool: marks: %w", err)
	}
	s.marks = m
	for name, ids := range marked {
		l := s.Lane(name)
		if l == nil {
			continue
		}
		for _, id := range ids {
			if i, ok := l.find(id); ok {
				l.unindex(i)
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
	err = load(func() error {
		m, err := openFile(path, false, true)
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

func (s *Spool) syncLoop(every time.Duration) {
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

func (l *Lane) find(id uint64) (int, bool) {
	return slices.BinarySearchFunc(l.entries, id, func(e entry, id uint64) int { return cmp.Compare(e.id, id) })
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Tx is the metadata side of a spool transaction: named buckets (a path of
// nested names) of keys with byte values, next to the lanes' buckets, whose
// names the caller must not use for metadata.
type Tx struct{ tx *bolt.Tx }

// Put sets key to value in the bucket at path, making the buckets.
func (t Tx) Put(path []string, key, value []byte) error {
	b, err := bucket(t.tx, path, true)
	if err != nil {
		return err
	}
	return b.Put(key, value)
}

// Delete removes key from the bucket at path, if both exist.
func (t Tx) Delete(path []string, key []byte) error {
	b, err := bucket(t.tx, path, false)
	if err != nil || b == nil {
		return err
	}
	return b.Delete(key)
}

// Get returns a copy of key's value in the bucket at path, or nil.
func (t Tx) Get(path []string, key []byte) []byte {
	b, _ := bucket(t.tx, path, false)
	if b == nil {
		return nil
	}
	return clone(b.Get(key))
}

func clone(v []byte) []byte {
	if v == nil {
		return nil
	}
	return append([]byte{}, v...)
}

// ForEach calls fn with each key and value of the bucket at path (none if
// it does not exist); they are valid only during the call.
func (t Tx) ForEach(path []string, fn func(k, v []byte) error) error {
	b, _ := bucket(t.tx, path, false)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if v == nil && b.Bucket(k) != nil {
			return nil // a nested bucket
		}
		return fn(k, v)
	})
}

// Buckets calls fn with the name of each bucket nested in the bucket at
// path (the top level when path is empty).
func (t Tx) Buckets(path []string, fn func(name []byte) error) error {
	if len(path) == 0 {
		return t.tx.ForEach(func(name []byte, _ *bolt.Bucket) error { return fn(name) })
	}
	b, _ := bucket(t.tx, path, false)
	if b == nil {
		return nil
	}
	return b.ForEachBucket(fn)
}

// View runs fn in a read-only transaction, for reading metadata at start.
// A damaged file is an error, not a panic.
func (s *Spool) View(fn func(Tx) error) error {
	err := load(func() error { return s.db.View(func(tx *bolt.Tx) error { return fn(Tx{tx}) }) })
	if err != nil {
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	return nil
}

// Update runs fn in a read-write transaction, for metadata alone.
func (s *Spool) Update(fn func(Tx) error) error {
	err := load(func() error { return s.db.Update(func(tx *bolt.Tx) error { return fn(Tx{tx}) }) })
	if err != nil {
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	return nil
}

// Append stores env in every lane and runs meta, which writes the
// caller's metadata, in the same transaction; when meta fails nothing is
// written. A lane that would go over its bound drops its oldest batches in
// that transaction too, reported in the result, except those stored with
// AppendKept; when only those are left and the batch still does not fit, it
// is not stored and the error wraps ErrFull. env is encoded (with
// transport.AppendEnvelope) and not kept.
func (s *Spool) Append(env *transport.Envelope, meta func(Tx) error) ([]Dropped, error) {
	return s.append(env, meta, false)
}

// AppendKept is Append for a batch that must never be dropped to make room
// (one whose source was told it is durable, and forgot it): the oldest
// batches not so kept are dropped to make room for it, and when that is not
// enough it is stored over the bound all the same. The caller keeps the
// bound by waiting for RoomKept before it makes such a batch. The mark is
// stored with the batch, so it holds after a restart.
func (s *Spool) AppendKept(env *transport.Envelope, meta func(Tx) error) ([]Dropped, error) {
	return s.append(env, meta, true)
}

// ErrFull is wrapped by Append's error when the lane's bound is taken by
// batches stored with AppendKept.
var ErrFull = errors.New("spool: full of batches that are never dropped")

// keptBit marks, in a stored batch's 4-byte header (its measurement count),
// a batch stored with AppendKept. Files of earlier releases never set it.
const keptBit = 1 << 31

// header reads a stored batch's measurement count and kept mark.
func header(v []byte) (count int, kept bool) {
	h := binary.BigEndian.Uint32(v)
	return int(h &^ keptBit), h&keptBit != 0
}

func (s *Spool) append(env *transport.Envelope, meta func(Tx) error, kept bool) ([]Dropped, error) {
	one := [1]*transport.Envelope{env}
	return s.appendAll(one[:], meta, kept)
}

// AppendAll is Append for several batches that go together (the batches of
// one collection's output, with the state that made them): all of envs and
// meta are stored in one transaction, or none of them. The lane's bound is
// kept for their total: the oldest batches are dropped to make room for
// all of them, and when that is not enough (batches stored with AppendKept,
// or envs larger than the bound) none is stored. Each batch keeps its own
// entry, delivered on its own. No batch is stored for an empty envs; meta
// still runs.
func (s *Spool) AppendAll(envs []*transport.Envelope, meta func(Tx) error) ([]Dropped, error) {
	if len(envs) == 0 {
		if meta == nil {
			return nil, nil
		}
		return nil, s.Update(meta)
	}
	return s.appendAll(envs, meta, false)
}

// batchNames names envs in errors: "batch 7" or "batches 7-9".
func batchNames(envs []*transport.Envelope) string {
	if len(envs) == 1 {
		return fmt.Sprintf("batch %d", envs[0].Seq)
	}
	return fmt.Sprintf("batches %d-%d", envs[0].Seq, envs[len(envs)-1].Seq)
}

func (s *Spool) appendAll(envs []*transport.Envelope, meta func(Tx) error, kept bool) ([]Dropped, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	// Every batch is encoded into s.buf, one after the other; s.ends[i] is
	// where batch i ends. The values given to bolt are slices of s.buf,
	// taken once it no longer grows.
	s.buf, s.ends = s.buf[:0], s.ends[:0]
	for _, env := range envs {
		h := uint32(len(env.Measurements))
		if kept {
			h |= keptBit
		}
		at := len(s.buf)
		s.buf = binary.BigEndian.AppendUint32(s.buf, h)
		if s.buf, err = transport.AppendEnvelope(s.buf, env); err != nil {
			return nil, fmt.Errorf("spool: encode batch %d: %w", env.Seq, err)
		}
		if size := int64(len(s.buf) - at); size > s.max {
			return nil, fmt.Errorf("spool: batch %d is %d bytes, over the spool bound of %d", env.Seq, size, s.max)
		}
		s.ends = append(s.ends, len(s.buf))
	}
	size := int64(len(s.buf))
	if size > s.max {
		return nil, fmt.Errorf("spool: %s are %d bytes together, over the spool bound of %d", batchNames(envs), size, s.max)
	}
	cut := make([][]int, len(s.lanes)) // per lane, the indexes of the entries dropped
	var drops []Dropped
	for i, l := range s.lanes {
		if l.detached {
			continue
		}
		freed, d := int64(0), Dropped{Lane: l.name}
		for n := 0; n < len(l.entries) && l.bytes-freed+size > s.max; n++ {
			if l.entries[n].kept {
				continue
			}
			freed += l.entries[n].size
			d.Measurements += l.entries[n].count
			cut[i] = append(cut[i], n)
		}
		if !kept && l.bytes-freed+size > s.max {
			verb := "does"
			if len(envs) > 1 {
				verb = "do"
			}
			return nil, fmt.Errorf("spool %s: %s (%d bytes) %s not fit lane %q: %w (%d of %d bytes)",
				s.path, batchNames(envs), size, verb, l.name, ErrFull, l.keptBytes, s.max)
		}
		if len(cut[i]) > 0 {
			d.Batches = len(cut[i])
			drops = append(drops, d)
		}
	}
	err = load(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			for i, l := range s.lanes {
				if l.detached {
					continue
				}
				b, err := bucket(tx, l.bucket, true)
				if err != nil {
					return err
				}
				for _, n := range cut[i] {
					if err := b.Delete(u64(l.entries[n].id)); err != nil {
						return err
					}
				}
				at := 0
				for j, end := range s.ends {
					if err := b.Put(u64(l.nextID+uint64(j)), s.buf[at:end:end]); err != nil {
						return err
					}
					at = end
				}
			}
			if meta != nil {
				return meta(Tx{tx})
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("spool %s: write %s: %w", s.path, batchNames(envs), err)
	}
	now := time.Now()
	for i, l := range s.lanes {
		if l.detached {
			continue
		}
		for j := len(cut[i]) - 1; j >= 0; j-- {
			l.unindex(cut[i][j])
		}
		at := 0
		for j, end := range s.ends {
			n := int64(end - at)
			l.entries = append(l.entries, entry{id: l.nextID, size: n, count: len(envs[j].Measurements), kept: kept, at: now})
			l.bytes += n
			if kept {
				l.keptBytes += n
			}
			l.nextID++
			at = end
		}
		signal(l.ready)
	}
	return drops, nil
}

// unindex takes entry i out of the lane's index; s.mu is held.
func (l *Lane) unindex(i int) {
	l.bytes -= l.entries[i].size
	if l.entries[i].kept {
		l.keptBytes -= l.entries[i].size
	}
	l.entries = slices.Delete(l.entries, i, i+1)
}

// Stop ends appends for the consumers: Next returns false once no batch is
// left that is not in flight. The spool stays open.
func (s *Spool) Stop() {
	s.mu.Lock()
	s.stop = true
	lanes := slices.Clone(s.lanes)
	s.mu.Unlock()
	for _, l := range lanes {
		signal(l.ready)
	}
}

// Next waits for the lane's oldest batch that is not in flight, marks it in
// flight and returns it. It returns false when ctx ends, or after Stop once
// no such batch is left. Several goroutines may take batches of one lane;
// each one taken is given back with Done or Release.
func (l *Lane) Next(ctx context.Context) (Entry, bool) {
	s := l.s
	for {
		if ctx.Err() != nil {
			return Entry{}, false
		}
		s.mu.Lock()
		for i := range l.entries {
			e := &l.entries[i]
			if e.inflight {
				continue
			}
			e.inflight = true
			more := false
			for _, o := range l.entries[i+1:] {
				if !o.inflight {
					more = true
					break
				}
			}
			out := Entry{ID: e.id, Count: e.count, Doubt: e.doubt}
			s.mu.Unlock()
			if more {
				signal(l.ready) // another taker may go on
			}
			return out, true
		}
		stop := s.stop
		s.mu.Unlock()
		if stop {
			signal(l.ready)
			return Entry{}, false
		}
		select {
		case <-ctx.Done():
			return Entry{}, false
		case <-l.ready:
		}
	}
}

// Read appends the stored frame of batch id (the envelope's wire encoding)
// to dst, and returns it with the envelope's Seq. An entry missing, short,
// without a readable header or on damaged pages is an error: the caller
// drops it with Done.
func (l *Lane) Read(id uint64, dst []byte) (frame []byte, seq uint64, err error) {
	start := len(dst)
	err = l.View(id, func(f []byte) error {
		dst = append(dst, f...)
		return nil
	})
	if err != nil {
		return dst, 0, err
	}
	if seq, err = frameSeq(dst[start:]); err != nil {
		return dst, 0, fmt.Errorf("spool %s: lane %q: read batch %d: %w", l.s.path, l.name, id, err)
	}
	return dst, seq, nil
}

// View calls fn with the stored frame of batch id, valid only during the
// call (decode it there: a Decoder copies what it keeps). Errors are as
// Read's.
func (l *Lane) View(id uint64, fn func(frame []byte) error) error {
	err := load(func() error {
		return l.s.db.View(func(tx *bolt.Tx) error {
			b, _ := bucket(tx, l.bucket, false)
			var v []byte
			if b != nil {
				v = b.Get(u64(id))
			}
			if len(v) < 4 {
				return fmt.Errorf("entry missing or short (%d bytes)", len(v))
			}
			return fn(v[4:])
		})
	})
	if err != nil {
		return fmt.Errorf("spool %s: lane %q: read batch %d: %w", l.s.path, l.name, id, err)
	}
	return nil
}

// frameSeq reads the Seq of an envelope's wire encoding, without decoding
// the rest (0 when absent, the proto3 default).
func frameSeq(frame []byte) (uint64, error) {
	for len(frame) > 0 {
		num, typ, n := protowire.ConsumeTag(frame)
		if n < 0 {
			return 0, fmt.Errorf("envelope header: %w", protowire.ParseError(n))
		}
		frame = frame[n:]
		if num == 4 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(frame)
			if n < 0 {
				return 0, fmt.Errorf("envelope seq: %w", protowire.ParseError(n))
			}
			return v, nil // AppendEnvelope writes it once, before the measurements
		}
		n = protowire.ConsumeFieldValue(num, typ, frame)
		if n < 0 {
			return 0, fmt.Errorf("envelope field %d: %w", num, protowire.ParseError(n))
		}
		frame = frame[n:]
	}
	return 0, nil
}

// Release gives batch id back for a later Next; doubt records that the
// attempt may have reached the store.
func (l *Lane) Release(id uint64, doubt bool) {
	l.s.mu.Lock()
	if i, ok := l.find(id); ok {
		l.entries[i].inflight = false
		l.entries[i].doubt = l.entries[i].doubt || doubt
	}
	l.s.mu.Unlock()
	signal(l.ready)
}

// Done forgets batch id: delivered, or refused for good. With a marks file
// it is marked delivered there and deleted from the spool file later, with
// others; without, it is deleted at once.
func (l *Lane) Done(id uint64) error {
	s := l.s
	if s.marks == nil {
		err := load(func() error {
			return s.db.Update(func(tx *bolt.Tx) error {
				b, err := bucket(tx, l.bucket, false)
				if err != nil || b == nil {
					return err
				}
				return b.Delete(u64(id))
			})
		})
		l.forget(id, false)
		if err != nil {
			return fmt.Errorf("spool %s: lane %q: delete batch %d: %w", s.path, l.name, id, err)
		}
		return nil
	}
	err := load(func() error {
		return s.marks.Update(func(tx *bolt.Tx) error {
			b, err := bucket(tx, []string{l.name}, true)
			if err != nil {
				return err
			}
			return b.Put(u64(id), nil)
		})
	})
	due := l.forget(id, true)
	if err != nil {
		return fmt.Errorf("spool: marks %s: mark batch %d of lane %q delivered: %w", s.marksPath, id, l.name, err)
	}
	if due {
		return s.compact(l)
	}
	return nil
}

// forget takes id out of the index and reports whether the lane's marked
// batches are due for compaction.
func (l *Lane) forget(id uint64, marked bool) (due bool) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if i, ok := l.find(id); ok {
		l.unindex(i)
	}
	if !marked {
		return false
	}
	l.delivered = append(l.delivered, id)
	return len(l.delivered) >= compactEvery || len(l.entries) == 0
}

// compact deletes the lane's delivered batches from the spool file, then
// their marks.
func (s *Spool) compact(l *Lane) error {
	s.mu.Lock()
	ids := slices.Clone(l.delivered)
	s.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	err := load(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			b, err := bucket(tx, l.bucket, false)
			if err != nil || b == nil {
				return err
			}
			for _, id := range ids {
				if err := b.Delete(u64(id)); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("spool %s: compact lane %q: %w", s.path, l.name, err)
	}
	err = load(func() error {
		return s.marks.Update(func(tx *bolt.Tx) error {
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
	})
	s.mu.Lock()
	l.delivered = slices.DeleteFunc(l.delivered, func(id uint64) bool { return slices.Contains(ids, id) })
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("spool: marks %s: %w", s.marksPath, err)
	}
	return nil
}

// Name is the lane's name.
func (l *Lane) Name() string { return l.name }

// Room reports whether a batch of size bytes more fits the lane's bound
// without dropping its oldest batches.
func (l *Lane) Room(size int64) bool {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.bytes == 0 || l.bytes+size <= l.s.max
}

// RoomKept reports whether a batch of size bytes more, stored with
// AppendKept, fits the lane's bound without going over it: counting only the
// batches so kept, since the others are dropped to make room for it.
func (l *Lane) RoomKept(size int64) bool {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.keptBytes == 0 || l.keptBytes+size <= l.s.max
}

// Oldest returns when the oldest batch the lane holds (being sent or not,
// until Done) was appended, or, for a batch of an earlier run, when the
// spool was opened; the zero Time when the lane holds none.
func (l *Lane) Oldest() time.Time {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if len(l.entries) == 0 {
		return time.Time{}
	}
	return l.entries[0].at
}

// Pending counts the lane's batches not yet delivered, and their
// measurements.
func (l *Lane) Pending() (batches, measurements int) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	for _, e := range l.entries {
		measurements += e.count
	}
	return len(l.entries), measurements
}

// Close compacts the lanes, forces what is written to disk and closes the
// files. It is safe to call more than once; Next and Done must have
// returned.
func (s *Spool) Close() error {
	s.closeOnce.Do(func() {
		var err error
		if s.stopSync != nil {
			close(s.stopSync)
			<-s.syncDone
		}
		if s.marks != nil {
			s.mu.Lock()
			lanes := slices.Clone(s.lanes)
			s.mu.Unlock()
			for _, l := range lanes {
				err = errors.Join(err, s.compact(l))
			}
			err = errors.Join(err, s.marks.Close())
		}
		err = errors.Join(err, s.db.Sync())
		if cerr := s.db.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if err != nil {
			s.closeErr = fmt.Errorf("spool: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}
