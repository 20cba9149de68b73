package spool

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/meterkit/meter/transport"
)

func open(t *testing.T, lay Layout, c Config) *Spool {
	s, err := Open(lay, c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestAppendWritesEveryLaneAndMetadataOrNothing(t *testing.T) {
	dir := t.TempDir()
	lay := Layout{Path: filepath.Join(dir, "s.spool"), Lanes: lanesAB()}
	s := open(t, lay, Config{})
	_, err := s.Append(env(1, 3), func(tx Tx) error { return tx.Put([]string{"dedup", "k"}, []byte("1"), nil) })
	require.NoError(t, err)
	boom := errors.New("boom")
	_, err = s.Append(env(2, 3), func(tx Tx) error {
		require.NoError(t, tx.Put([]string{"dedup", "k"}, []byte("2"), nil))
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "s.spool", "the error names the file")
	for _, name := range []string{"a", "b"} {
		n, m := s.Lane(name).Pending()
		require.Equal(t, 1, n, "the failed append wrote no batch")
		require.Equal(t, 3, m)
	}
	var keys []string
	require.NoError(t, s.View(func(tx Tx) error {
		require.NoError(t, tx.Buckets([]string{"dedup"}, func(name []byte) error {
			require.Equal(t, "k", string(name))
			return nil
		}))
		return tx.ForEach([]string{"dedup", "k"}, func(k, v []byte) error {
			require.Empty(t, v)
			keys = append(keys, string(k))
			return nil
		})
	}))
	require.Equal(t, []string{"1"}, keys, "nor its metadata")
	require.NoError(t, s.Update(func(tx Tx) error { return tx.Delete([]string{"dedup", "k"}, []byte("1")) }))
	require.NoError(t, s.View(func(tx Tx) error {
		require.Nil(t, tx.Get([]string{"dedup", "k"}, []byte("1")))
		require.Nil(t, tx.Get([]string{"missing"}, []byte("1")))
		return tx.ForEach([]string{"missing"}, func(k, v []byte) error { return errors.New("called") })
	}))

	// The stored frame is the envelope's wire encoding.
	l := s.Lane("a")
	e, ok := l.Next(context.Background())
	require.True(t, ok)
	frame, seq, err := l.Read(e.ID, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)
	want, err := transport.AppendEnvelope(nil, env(1, 3))
	require.NoError(t, err)
	require.Equal(t, want, frame)
}

func TestDropOldestWithinTheBound(t *testing.T) {
	frame, err := transport.AppendEnvelope(nil, env(1, 2))
	require.NoError(t, err)
	size := int64(4 + len(frame))
	s := open(t, Layout{Path: filepath.Join(t.TempDir(), "s.spool"), Lanes: lanesAB()}, Config{MaxBytes: 3 * size})
	// Lane a is consumed, lane b is not: only b drops.
	for seq := uint64(1); seq <= 5; seq++ {
		drops, err := s.Append(env(seq, 2), nil)
		require.NoError(t, err)
		switch {
		case seq <= 3:
			require.Empty(t, drops)
		default:
			require.Len(t, drops, 1, "seq %d", seq)
			require.Equal(t, Dropped{Lane: "b", Batches: 1, Measurements: 2}, drops[0])
		}
		a := s.Lane("a")
		e, ok := a.Next(context.Background())
		require.True(t, ok)
		require.NoError(t, a.Done(e.ID))
	}
	require.Equal(t, []uint64{3, 4, 5}, seqs(t, s.Lane("b")))
	_, err = s.Append(env(6, 20), nil)
	require.ErrorContains(t, err, "over the spool bound")
}

func TestNextReleaseStop(t *testing.T) {
	s := open(t, Layout{Path: filepath.Join(t.TempDir(), "s.spool"), Lanes: []LaneSpec{{Name: "one", Bucket: []string{"batches"}}}}, Config{Sync: SyncNever})
	l := s.Lane("one")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, ok := l.Next(ctx)
	require.False(t, ok, "nothing to take: Next returns when ctx ends")
	for seq := uint64(1); seq <= 3; seq++ {
		_, err := s.Append(env(seq, 1), nil)
		require.NoError(t, err)
	}
	e1, _ := l.Next(context.Background())
	e2, _ := l.Next(context.Background())
	require.Equal(t, []uint64{0, 1}, []uint64{e1.ID, e2.ID}, "several in flight, oldest first")
	require.False(t, e1.Doubt)
	l.Release(e1.ID, true)
	again, _ := l.Next(context.Background())
	require.Equal(t, e1.ID, again.ID, "a released batch comes again")
	require.True(t, again.Doubt)
	require.NoError(t, l.Done(e2.ID), "forgotten out of order")
	s.Stop()
	e3, ok := l.Next(context.Background())
	require.True(t, ok, "after Stop, what is left is still handed out")
	require.Equal(t, uint64(2), e3.ID)
	_, ok = l.Next(context.Background())
	require.False(t, ok, "then Next ends")
	n, _ := l.Pending()
	require.Equal(t, 2, n)
}

// crash closes the files as kill -9 would leave them: no compaction.
func crash(s *Spool) {
	if s.stopSync != nil {
		close(s.stopSync)
		<-s.syncDone
	}
	if s.marks != nil {
		_ = s.marks.Close()
	}
	_ = s.db.Close()
}

func marked(t *testing.T, dir string) (*Spool, Layout) {
	lay := Layout{Path: filepath.Join(dir, "s.spool"), Marks: filepath.Join(dir, "s.marks"),
		Lanes: []LaneSpec{{Name: "store", Bucket: []string{"lanes", "store"}}}}
	s, err := Open(lay, Config{})
	require.NoError(t, err)
	for seq := uint64(1); seq <= 3; seq++ {
		_, err := s.Append(env(seq, 1), nil)
		require.NoError(t, err)
	}
	return s, lay
}

func TestMarksAndCompaction(t *testing.T) {
	dir := t.TempDir()
	s, lay := marked(t, dir)
	l := s.Lane("store")
	e, _ := l.Next(context.Background())
	require.NoError(t, l.Done(e.ID)) // two batches left: no compaction yet
	require.Len(t, l.delivered, 1, "marked, not yet deleted from the spool file")
	crash(s)

	s = open(t, lay, Config{})
	n, _ := s.Lane("store").Pending()
	require.Equal(t, 2, n, "the batch marked delivered is not delivered again")
	require.Empty(t, s.Lane("store").delivered, "compacted at open")
	l = s.Lane("store")
	for {
		n, _ := l.Pending()
		if n == 0 {
			break
		}
		e, _ := l.Next(context.Background())
		require.NoError(t, l.Done(e.ID))
	}
	require.Empty(t, l.delivered, "compacted when the lane runs empty")
}

// A machine crash may damage the marks file, written without fsync: it is
// made anew, and the batches it marked are delivered again, never lost.
func TestDamagedMarksFileMeansRedeliveryNotLoss(t *testing.T) {
	dir := t.TempDir()
	s, lay := marked(t, dir)
	l := s.Lane("store")
	e, _ := l.Next(context.Background())
	require.NoError(t, l.Done(e.ID))
	crash(s)
	require.NoError(t, os.WriteFile(lay.Marks, []byte("garbage after a power cut"), 0o600))
	s = open(t, lay, Config{})
	n, _ := s.Lane("store").Pending()
	require.Equal(t, 3, n)
}

// A damaged spool file is an error naming it, never a panic: garbage, pages
// overwritten, or an entry too short.
func TestDamagedSpoolIsAnErrorNamingIt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "garbage.spool")
	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("not a bbolt file "), 1024), 0o600))
	_, err := Open(Layout{Path: path, Lanes: lanesAB()}, Config{})
	require.ErrorContains(t, err, path)

	// Pages overwritten after the meta pages.
	path = filepath.Join(dir, "pages.spool")
	s, err := Open(Layout{Path: path, Lanes: lanesAB()}, Config{})
	require.NoError(t, err)
	for seq := uint64(1); seq <= 300; seq++ {
		_, err := s.Append(env(seq, 3), nil)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	fi, err := f.Stat()
	require.NoError(t, err)
	page := int64(os.Getpagesize())
	_, err = f.WriteAt(bytes.Repeat([]byte{0xA5}, int(fi.Size()-2*page)), 2*page)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = Open(Layout{Path: path, Lanes: lanesAB()}, Config{})
	require.ErrorIs(t, err, ErrDamaged)
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "move it away")

	// An entry too short to hold a batch.
	path = filepath.Join(dir, "short.spool")
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("batches"))
		if err != nil {
			return err
		}
		return b.Put(u64(1), []byte{0, 0})
	}))
	require.NoError(t, db.Close())
	_, err = Open(Layout{Path: path, Lanes: []LaneSpec{{Name: "one", Bucket: []string{"batches"}}}}, Config{})
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "corrupt entry")

	// A stored frame whose header does not parse is an error from Read.
	path = filepath.Join(dir, "frame.spool")
	s = open(t, Layout{Path: path, Lanes: []LaneSpec{{Name: "one", Bucket: []string{"batches"}}}}, Config{})
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("batches")).Put(u64(7), []byte{0, 0, 0, 1, 0xff})
	}))
	_, _, err = s.Lane("one").Read(7, nil)
	require.ErrorContains(t, err, path)
}

func TestOptions(t *testing.T) {
	c, err := NewConfig()
	require.NoError(t, err)
	require.Equal(t, Config{MaxBytes: DefaultMaxBytes, Sync: SyncAlways}, c)
	c, err = NewConfig(MaxBytes(10), Sync(SyncEvery(time.Second)))
	require.NoError(t, err)
	require.Equal(t, int64(10), c.MaxBytes)
	require.Equal(t, "every 1s", c.Sync.String())
	c, err = NewConfig(MaxBytes(0))
	require.NoError(t, err)
	require.Equal(t, int64(DefaultMaxBytes), c.MaxBytes, "zero is the default")
	_, err = NewConfig(MaxBytes(-1))
	require.EqualError(t, err, "SpoolMaxBytes: negative count -1")
	require.Equal(t, SyncAlways, SyncEvery(0))
	require.Equal(t, "always", SyncAlways.String())
	require.Equal(t, "never", SyncNever.String())
	_, err = Open(Layout{Path: filepath.Join(t.TempDir(), "s"), Lanes: []LaneSpec{{Name: "x"}}}, Config{})
	require.ErrorContains(t, err, "no bucket")
}

func TestFrameSeq(t *testing.T) {
	for _, seq := range []uint64{0, 1, 1 << 30, 1 << 62} {
		e := env(seq, 2)
		e.SentAt, e.Measurements[0].Time, e.Measurements[1].Time = time.Now(), time.Now(), time.Now()
		f, err := transport.AppendEnvelope(nil, e)
		require.NoError(t, err)
		got, err := frameSeq(f)
		require.NoError(t, err)
		require.Equal(t, seq, got)
	}
	_, err := frameSeq([]byte{0x0a, 0x10}) // a tenant of 16 bytes, cut short
	require.Error(t, err)
}
