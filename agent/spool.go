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

	"github.com/meterkit/meter/internal/spool"
	"github.com/meterkit/meter/transport"
)

// SyncPolicy says when a spool forces its writes to disk. The agent and
// the publisher share the type.
type SyncPolicy = spool.SyncPolicy

var (
	// SyncAlways makes every batch durable before it is sent: nothing
	// collected is lost when the machine loses power. The default.
	SyncAlways = spool.SyncAlways
	// SyncNever leaves flushing to the operating system: a crash of the agent
	// (kill -9 included) loses nothing; a crash of the machine may lose
	// recent batches or leave the spool file damaged, in which case the agent
	// refuses to start until the file is moved away.
	SyncNever = spool.SyncNever
)

// SyncEvery forces writes to disk every d: a crash of the agent loses
// nothing; a crash of the machine may lose up to d's worth of batches or,
// as with SyncNever, leave the spool file damaged.
func SyncEvery(d time.Duration) SyncPolicy { return spool.SyncEvery(d) }

// DefaultSpoolBytes bounds the spool when WithSpool is given no bound.
const DefaultSpoolBytes = spool.DefaultMaxBytes

// SpoolOption configures the disk spool. The agent and the publisher
// share the type.
type SpoolOption = spool.Option

// SpoolMaxBytes bounds the spool's batches in bytes (default 256 MiB). When
// a new batch does not fit, the oldest batches are dropped, counted and
// logged.
func SpoolMaxBytes(n int64) SpoolOption { return spool.MaxBytes(n) }

// SpoolSync sets when writes are forced to disk (default SyncAlways).
func SpoolSync(p SyncPolicy) SpoolOption { return spool.Sync(p) }

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
		sc, err := spool.NewConfig(opts...)
		if err != nil {
			return fmt.Errorf("agent: WithSpool: %w", err)
		}
		c.spoolDir, c.spool = dir, sc
		return nil
	}
}

// The agent's spool file: its one lane is the bucket "batches" and the
// last sequence number is meta/last_seq, as in files of earlier releases.
var (
	laneBatches = []string{"batches"}
	bucketMeta  = []string{"meta"}
	keyLastSeq  = []byte("last_seq")
)

// diskSpool is the durable store: the shared spool with one lane, and the
// last sequence number kept in the transaction of each batch. Deletes may
// come in any order (several batches in flight).
type diskSpool struct {
	sp      *spool.Spool
	lane    *spool.Lane
	path    string
	recycle func(*transport.Envelope)
	onBad   func(err error) // a stored batch that cannot be read back, dropped
	raw     bool            // senders take the stored frames as they are
	last    uint64
	keys    *keyWindow  // the keys of recent push deliveries made durable
	state   *stageState // the stages' state, committed with the next batch (state.go); nil without
}

func openSpool(dir string, sc spool.Config, recycle func(*transport.Envelope), raw bool) (*diskSpool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: spool: %w", err)
	}
	path := filepath.Join(dir, "agent.spool")
	sp, err := spool.Open(spool.Layout{Path: path, Lanes: []spool.LaneSpec{{Name: "batches", Bucket: laneBatches}}}, sc)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	s := &diskSpool{sp: sp, lane: sp.Lane("batches"), path: path, recycle: recycle, raw: raw, keys: newKeyWindow(DefaultPushKeys)}
	err = sp.View(func(tx spool.Tx) error {
		if v := tx.Get(bucketMeta, keyLastSeq); len(v) == 8 {
			s.last = binary.BigEndian.Uint64(v)
		}
		return s.keys.load(tx)
	})
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("agent: read spool (move it away to start afresh): %w", err)
	}
	return s, nil
}

func (s *diskSpool) lastSeq() uint64 { return s.last }

// push stores env with the last sequence number, in one transaction, and
// recycles env's memory.
func (s *diskSpool) push(env *transport.Envelope, _ int, keys []string, kept bool) (droppedBatches, droppedMeasurements int, err error) {
	seq := env.Seq
	plan := s.keys.plan(keys)
	appendFn := s.sp.Append
	if kept {
		appendFn = s.sp.AppendKept
	}
	drops, err := appendFn(env, func(tx spool.Tx) error {
		if err := plan.write(tx); err != nil {
			return err
		}
		if s.state != nil {
			if err := s.state.put(tx); err != nil {
				return err
			}
		}
		return tx.Put(bucketMeta, keyLastSeq, binary.BigEndian.AppendUint64(nil, seq))
	})
	s.recycle(env)
	if err != nil {
		if s.state != nil {
			s.state.lost()
		}
		return 0, 0, fmt.Errorf("agent: %w", err)
	}
	if s.state != nil {
		s.state.stored()
	}
	s.keys.apply(plan)
	for _, d := range drops {
		droppedBatches += d.Batches
		droppedMeasurements += d.Measurements
	}
	return droppedBatches, droppedMeasurements, nil
}

func (s *diskSpool) next(ctx context.Context, sl *slot) bool {
	for {
		e, ok := s.lane.Next(ctx)
		if !ok {
			return false
		}
		var seq uint64
		var err error
		if s.raw {
			sl.frame, seq, err = s.lane.Read(e.ID, sl.frame[:0])
		} else {
			err = s.lane.View(e.ID, func(frame []byte) error {
				return sl.dec.Decode(frame, &sl.buf) // copies what it keeps
			})
			seq = sl.buf.Seq
		}
		if err != nil {
			// A batch that cannot be read back is dropped, not resent forever.
			if s.onBad != nil {
				s.onBad(err) // names the file, the batch's id and what is wrong
			}
			_ = s.lane.Done(e.ID)
			continue
		}
		sl.id, sl.seq, sl.count, sl.env = e.ID, seq, e.Count, nil
		if !s.raw {
			sl.env = &sl.buf
		}
		return true
	}
}

func (s *diskSpool) done(sl *slot) error {
	sl.env = nil
	if err := s.lane.Done(sl.id); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

func (s *diskSpool) release(sl *slot) bool {
	sl.env = nil
	s.lane.Release(sl.id, false)
	return true
}

// room waits, polling, for the spool to have room for need bytes more.
// Polled collections do not ask (the spool is bounded on disk, with room for
// hours), and push deliveries ask roomKept (keep.go).
func (s *diskSpool) room(ctx context.Context, need int, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		if s.lane.Room(int64(need)) {
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

func (s *diskSpool) pendingBytes() int { return 0 }

func (s *diskSpool) pending() int {
	n, _ := s.lane.Pending()
	return n
}

func (s *diskSpool) oldest() time.Time { return s.lane.Oldest() }

func (s *diskSpool) pendingMeasurements() int {
	_, m := s.lane.Pending()
	return m
}

func (s *diskSpool) close() { s.sp.Stop() }

func (s *diskSpool) shutdown() (kept, lost int, err error) {
	kept = s.pendingMeasurements()
	if err := s.sp.Close(); err != nil {
		return kept, 0, fmt.Errorf("agent: %w", err)
	}
	return kept, 0, nil
}

// DefaultPushKeys is how many keys of push deliveries (driver.Delivery.Key)
// the spool remembers to recognise a redelivery.
const DefaultPushKeys = 10000

// The keys of recent push deliveries: key -> a counter giving their order.
var bucketPushKeys = []string{"push_keys"}

// keyWindow is the spool's window of recent push delivery keys, mirrored in
// memory; the spool file is written in the transaction of each batch.
type keyWindow struct {
	mu    sync.Mutex
	max   int
	count uint64            // the last key's counter
	ids   map[string]uint64 // key -> counter
	ring  []string          // oldest first
}

func newKeyWindow(max int) *keyWindow {
	return &keyWindow{max: max, ids: make(map[string]uint64)}
}

func (w *keyWindow) load(tx spool.Tx) error {
	type kc struct {
		k string
		c uint64
	}
	var all []kc
	err := tx.ForEach(bucketPushKeys, func(k, v []byte) error {
		if len(v) == 8 {
			all = append(all, kc{string(k), binary.BigEndian.Uint64(v)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b kc) int { return cmp.Compare(a.c, b.c) })
	for _, e := range all {
		w.ids[e.k] = e.c
		w.ring = append(w.ring, e.k)
		w.count = max(w.count, e.c)
	}
	return nil
}

func (w *keyWindow) has(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.ids[key]
	return ok
}

// keyPlan is what one batch's transaction writes: new keys with their
// counters, and the oldest keys it evicts.
type keyPlan struct {
	add   []string
	first uint64 // the counter of add[0]
	evict []string
}

func (w *keyWindow) plan(keys []string) keyPlan {
	if len(keys) == 0 {
		return keyPlan{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	p := keyPlan{first: w.count + 1}
	for _, k := range keys {
		if _, ok := w.ids[k]; !ok && !slices.Contains(p.add, k) {
			p.add = append(p.add, k)
		}
	}
	if over := len(w.ring) + len(p.add) - w.max; over > 0 {
		p.evict = w.ring[:min(over, len(w.ring))]
	}
	return p
}

func (p keyPlan) write(tx spool.Tx) error {
	for i, k := range p.add {
		if err := tx.Put(bucketPushKeys, []byte(k), binary.BigEndian.AppendUint64(nil, p.first+uint64(i))); err != nil {
			return err
		}
	}
	for _, k := range p.evict {
		if err := tx.Delete(bucketPushKeys, []byte(k)); err != nil {
			return err
		}
	}
	return nil
}

// apply mirrors a committed plan in memory.
func (w *keyWindow) apply(p keyPlan) {
	if len(p.add) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range p.evict {
		delete(w.ids, k)
	}
	w.ring = append(w.ring[len(p.evict):], p.add...)
	for i, k := range p.add {
		w.ids[k] = p.first + uint64(i)
	}
	w.count = p.first + uint64(len(p.add)) - 1
}
