package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	s := &diskSpool{sp: sp, lane: sp.Lane("batches"), path: path, recycle: recycle, raw: raw}
	err = sp.View(func(tx spool.Tx) error {
		if v := tx.Get(bucketMeta, keyLastSeq); len(v) == 8 {
			s.last = binary.BigEndian.Uint64(v)
		}
		return nil
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
func (s *diskSpool) push(env *transport.Envelope, _ int) (droppedBatches, droppedMeasurements int, err error) {
	seq := env.Seq
	drops, err := s.sp.Append(env, func(tx spool.Tx) error {
		return tx.Put(bucketMeta, keyLastSeq, binary.BigEndian.AppendUint64(nil, seq))
	})
	s.recycle(env)
	if err != nil {
		return 0, 0, fmt.Errorf("agent: %w", err)
	}
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
// Only push deliveries wait (back-pressure); polled collections do not ask:
// the spool is bounded on disk, with room for hours.
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
