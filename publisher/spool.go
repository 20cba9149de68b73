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
	"time"

	"github.com/meterkit/meter"
	ispool "github.com/meterkit/meter/internal/spool"
	"github.com/meterkit/meter/transport"
)

// SyncPolicy says when a spool forces its writes to disk. The agent and
// the publisher share the type.
type SyncPolicy = ispool.SyncPolicy

var (
	// SyncAlways forces every batch to disk before the agent is
	// acknowledged. The default.
	SyncAlways = ispool.SyncAlways
	// SyncNever leaves flushing to the operating system: a crash of the
	// publisher process loses nothing, a crash of the machine may lose what
	// was acknowledged in the last seconds or leave the spool file damaged,
	// in which case the publisher refuses to start until it is moved away.
	SyncNever = ispool.SyncNever
)

// SyncEvery forces writes to disk every d: a crash of the publisher loses
// nothing; a crash of the machine may lose up to d's worth of batches or,
// as with SyncNever, leave the spool file damaged.
func SyncEvery(d time.Duration) SyncPolicy { return ispool.SyncEvery(d) }

// DefaultSpoolBytes bounds each sink's spool lane when WithSpool is given no bound.
const DefaultSpoolBytes = ispool.DefaultMaxBytes

// SpoolOption configures the publisher's spool. The agent and the
// publisher share the type.
type SpoolOption = ispool.Option

// SpoolMaxBytes bounds each sink's lane in bytes (default 256 MiB). When a
// batch does not fit, the lane's oldest batches are dropped, counted and logged.
func SpoolMaxBytes(n int64) SpoolOption { return ispool.MaxBytes(n) }

// SpoolSync sets when writes are forced to disk (default SyncAlways).
func SpoolSync(p SyncPolicy) SpoolOption { return ispool.Sync(p) }

// SpoolNoSync is SpoolSync(SyncNever).
//
// Deprecated: use SpoolSync(SyncNever), the policy type the agent uses too.
func SpoolNoSync() SpoolOption { return ispool.Sync(ispool.SyncNever) }

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
		sc, err := ispool.NewConfig(opts...)
		if err != nil {
			return fmt.Errorf("publisher: WithSpool: %w", err)
		}
		c.spoolDir, c.spool = dir, sc
		return nil
	}
}

// The publisher's spool file, as in earlier releases: bucket lanes/<sink>
// holds that sink's pending batches; bucket dedup/<tenant NUL agent> holds
// the accepted sequence numbers of the window (key: the 8-byte big-endian
// seq; value: when it was accepted, 8-byte big-endian unix nanoseconds, or
// empty in files written before that was kept: accepted at load time).
// Which batches a sink took is marked in publisher.delivered, written
// without fsync: forgetting a delivered batch is then a plain write rather
// than an fsynced commit, and a machine crash that loses the marks only
// causes redelivery.
const bucketLanes, bucketDedup = "lanes", "dedup"

// spoolConfig is what the spool options set.
type spoolConfig = ispool.Config

// lane is one sink's queue in the spool.
type lane = ispool.Lane

// spool is the publisher's side of the shared spool.
type spool struct {
	sp    *ispool.Spool
	lanes map[string]*lane
	mu    sync.Mutex // guards evicted
	// evicted is scratch for the seqs leaving the de-duplication window.
	evicted []uint64
}

func openSpool(dir string, sc spoolConfig, sinks []string, dd *dedup) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("publisher: spool: %w", err)
	}
	lay := ispool.Layout{Path: filepath.Join(dir, "publisher.spool"), Marks: filepath.Join(dir, "publisher.delivered")}
	for _, name := range sinks {
		lay.Lanes = append(lay.Lanes, ispool.LaneSpec{Name: name, Bucket: []string{bucketLanes, name}})
	}
	lay.Others = []string{bucketLanes} // the lanes of sinks no longer configured: kept, detached
	sp, err := ispool.Open(lay, sc)
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	s := &spool{sp: sp, lanes: map[string]*lane{}}
	for _, name := range sinks {
		s.lanes[name] = sp.Lane(name)
	}
	err = sp.Update(func(tx ispool.Tx) error {
		var keys []string
		err := tx.Buckets([]string{bucketDedup}, func(key []byte) error {
			keys = append(keys, string(key))
			return nil
		})
		if err != nil {
			return err
		}
		for _, key := range keys {
			if err := loadDedup(tx, key, dd); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("publisher: read spool (move it away to start afresh): %w", err)
	}
	return s, nil
}

// loadDedup fills dd with one source's window, oldest first, and forgets
// in the spool what falls out of it.
func loadDedup(tx ispool.Tx, key string, dd *dedup) error {
	type entry struct {
		seq uint64
		at  int64
	}
	path := []string{bucketDedup, key}
	var es []entry
	var untimed []uint64
	loaded := dd.nowNanos()
	err := tx.ForEach(path, func(k, v []byte) error {
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
		if err := tx.Put(path, u64(seq), u64(uint64(loaded))); err != nil {
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
		if err := tx.Delete(path, u64(seq)); err != nil {
			return err
		}
	}
	return nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// dropped reports what a lane lost to make room.
type dropped struct {
	lane                  string
	batches, measurements int
}

// append stores batch (from env's header) in every lane and records seq in
// the de-duplication window (unless dd is nil: the publisher's own
// batches), and writes what meta writes (unless nil), all in one
// transaction.
func (s *spool) append(env *transport.Envelope, batch []meter.Measurement, dd *dedup, key string, meta func(ispool.Tx) error) ([]dropped, error) {
	hdr := *env
	hdr.Measurements = batch
	hdr.Sealed, hdr.Auth = nil, nil
	// Version 1, whatever the agent sent: a spool file stays readable by a
	// publisher of an earlier release (version 2 is for the wire).
	hdr.Version = transport.Version
	s.mu.Lock()
	defer s.mu.Unlock()
	var at int64
	var evicted []uint64
	if dd != nil {
		at = dd.nowNanos()
		evicted = dd.peekEvict(s.evicted[:0], key, at)
	}
	drops, err := s.sp.Append(&hdr, func(tx ispool.Tx) error {
		if meta != nil {
			if err := meta(tx); err != nil {
				return err
			}
		}
		if dd == nil {
			return nil
		}
		return putMark(tx, evicted, key, env.Seq, at)
	})
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	if dd != nil {
		s.evicted = dd.add(evicted[:0], key, env.Seq, at)
	}
	out := make([]dropped, 0, len(drops))
	for _, d := range drops {
		out = append(out, dropped{lane: d.Lane, batches: d.Batches, measurements: d.Measurements})
	}
	return out, nil
}

// mark records seq in the de-duplication window alone, for a batch that
// needs no delivery (the stages reduced it to nothing), so that a resend
// of it is a duplicate after a restart too; meta (unless nil) writes the
// stages' state in the same transaction.
func (s *spool) mark(dd *dedup, key string, seq uint64, meta func(ispool.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := dd.nowNanos()
	evicted := dd.peekEvict(s.evicted[:0], key, at)
	err := s.sp.Update(func(tx ispool.Tx) error {
		if meta != nil {
			if err := meta(tx); err != nil {
				return err
			}
		}
		return putMark(tx, evicted, key, seq, at)
	})
	if err != nil {
		return fmt.Errorf("publisher: spool: %w", err)
	}
	s.evicted = dd.add(evicted[:0], key, seq, at)
	return nil
}

// putMark writes seq, accepted at at, into key's window in the spool file,
// and deletes the seqs that leave the window.
func putMark(tx ispool.Tx, evicted []uint64, key string, seq uint64, at int64) error {
	path := []string{bucketDedup, key}
	for _, old := range evicted {
		if err := tx.Delete(path, u64(old)); err != nil {
			return err
		}
	}
	return tx.Put(path, u64(seq), u64(uint64(at)))
}

// first waits for the lane's oldest batch and decodes it into env with dec.
// It returns the batch's id in the lane and whether it is in doubt. The
// batch stays first in the lane until remove.
func (s *spool) first(ctx context.Context, l *lane, dec *transport.Decoder, env *transport.Envelope) (id uint64, doubt, ok bool, err error) {
	e, ok := l.Next(ctx)
	if !ok {
		return 0, false, false, nil
	}
	// One goroutine takes a lane's batches: the batch is given back at once
	// and comes first again until it is removed.
	l.Release(e.ID, false)
	err = l.View(e.ID, func(frame []byte) error {
		return dec.Decode(frame, env) // copies what it keeps
	})
	return e.ID, e.Doubt, true, err
}

// doubt records that an attempt to deliver the lane's batch id may have
// reached the store.
func (s *spool) doubt(l *lane, id uint64) { l.Release(id, true) }

// remove forgets a lane's batch once its sink took it (or refused it for
// good).
func (s *spool) remove(l *lane, id uint64) error {
	if err := l.Done(id); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	return nil
}

func (s *spool) pending(name string) (batches, measurements int) {
	l := s.sp.Lane(name)
	if l == nil {
		return 0, 0
	}
	return l.Pending()
}

func (s *spool) close() error {
	if err := s.sp.Close(); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	return nil
}
