package publisher

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
)

// fakeClock is a settable clock for the de-duplication window.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestDedupCountAndAge: a seq is remembered while it is among the last n
// or younger than the age; past both it is forgotten; the age keeps at
// most dedupAgeFactor*n.
func TestDedupCountAndAge(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	d := newDedup(2, time.Minute)
	d.now = clk.now
	add := func(seq uint64) []uint64 {
		require.Equal(t, claimed, d.reserve("k", seq))
		return d.add(nil, "k", seq, d.nowNanos())
	}
	for seq := uint64(1); seq <= 5; seq++ {
		require.Empty(t, add(seq), "all younger than the age")
		clk.t = clk.t.Add(time.Second)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		require.Equal(t, accepted, d.reserve("k", seq), "seq %d", seq)
	}
	clk.t = clk.t.Add(time.Minute)
	// 1..5 are all older than the age now: adding 6 forgets all but the
	// last 2 (6 and 5).
	require.Equal(t, []uint64{1, 2, 3, 4}, d.peekEvict(nil, "k", d.nowNanos()))
	require.Equal(t, []uint64{1, 2, 3, 4}, add(6))
	require.Equal(t, claimed, d.reserve("k", 4))
	d.release("k", 4)
	for _, seq := range []uint64{5, 6} {
		require.Equal(t, accepted, d.reserve("k", seq))
	}
	// Old but among the last 2: kept however old.
	clk.t = clk.t.Add(time.Hour)
	require.Equal(t, accepted, d.reserve("k", 6))
	require.Equal(t, accepted, d.reserve("k", 5))

	// The age keeps at most dedupAgeFactor*n, all young.
	d2 := newDedup(2, time.Hour)
	d2.now = clk.now
	var gone []uint64
	for seq := uint64(1); seq <= dedupAgeFactor*2+3; seq++ {
		gone = d2.add(gone, "k", seq, d2.nowNanos())
	}
	require.Equal(t, []uint64{1, 2, 3}, gone)
	// Expiry without an addition keeps the last n.
	clk.t = clk.t.Add(2 * time.Hour)
	require.Len(t, d2.expire(nil, "k", d2.nowNanos()), dedupAgeFactor*2-2)
	require.Equal(t, accepted, d2.reserve("k", dedupAgeFactor*2+3))
	require.Equal(t, accepted, d2.reserve("k", dedupAgeFactor*2+2))
	require.Equal(t, claimed, d2.reserve("k", dedupAgeFactor*2+1))
}

// TestDedupPersistsAcceptTime: the spool stores when each seq was accepted,
// so that a restarted publisher keeps the window by age as well as by
// count; an entry of an older spool, without a time, counts as accepted at
// load time.
func TestDedupPersistsAcceptTime(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	dd := newDedup(1, time.Minute)
	dd.now = clk.now
	s, err := openSpool(dir, spoolConfig{MaxBytes: 1 << 20}, []string{"store"}, dd)
	require.NoError(t, err)
	key := sourceKey("t", "a")
	for seq := uint64(1); seq <= 3; seq++ {
		env := &transport.Envelope{Version: transport.Version, Tenant: "t", Agent: "a", Seq: seq, SentAt: clk.t}
		batch := []meter.Measurement{{Name: "m", Kind: meter.Gauge, Value: 1, Time: clk.t}}
		require.Equal(t, claimed, dd.reserve(key, seq))
		_, err := s.append(env, batch, dd, key, nil)
		require.NoError(t, err)
		clk.t = clk.t.Add(20 * time.Second)
	}
	require.NoError(t, s.close())

	// What the file holds: each seq with its accept time.
	db, err := bolt.Open(filepath.Join(dir, "publisher.spool"), 0o600, nil)
	require.NoError(t, err)
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketDedup)).Bucket([]byte(key))
		for seq := uint64(1); seq <= 3; seq++ {
			v := b.Get(u64(seq))
			require.Len(t, v, 8, "seq %d", seq)
			require.Equal(t, start.Add(time.Duration(seq-1)*20*time.Second).UnixNano(), int64(binary.BigEndian.Uint64(v)))
		}
		// As an older publisher wrote it: no time.
		return b.Put(u64(9), nil)
	}))
	require.NoError(t, db.Close())

	// Restarted 50 s after seq 1 was accepted: seq 1 is 50 s old, within
	// the minute; 9 counts as accepted now.
	clk.t = start.Add(50 * time.Second)
	dd = newDedup(1, time.Minute)
	dd.now = clk.now
	s, err = openSpool(dir, spoolConfig{MaxBytes: 1 << 20}, []string{"store"}, dd)
	require.NoError(t, err)
	for _, seq := range []uint64{1, 2, 3, 9} {
		require.Equal(t, accepted, dd.reserve(key, seq), "seq %d", seq)
	}
	require.NoError(t, s.close())

	// Restarted 2 minutes later: only the newest (by accept time: 9, taken
	// as accepted at the previous start, and so written) is kept by count;
	// the rest are past the age, forgotten, and deleted from the file.
	clk.t = clk.t.Add(2 * time.Minute)
	dd = newDedup(1, time.Minute)
	dd.now = clk.now
	s, err = openSpool(dir, spoolConfig{MaxBytes: 1 << 20}, []string{"store"}, dd)
	require.NoError(t, err)
	require.Equal(t, accepted, dd.reserve(key, 9))
	for _, seq := range []uint64{1, 2, 3} {
		require.Equal(t, claimed, dd.reserve(key, seq), "seq %d", seq)
	}
	require.NoError(t, s.close())
	db, err = bolt.Open(filepath.Join(dir, "publisher.spool"), 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		require.Equal(t, 1, tx.Bucket([]byte(bucketDedup)).Bucket([]byte(key)).Stats().KeyN)
		return nil
	}))
}
