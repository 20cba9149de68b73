package spool

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport"
)

// AppendAll stores every batch and the metadata in one transaction, or
// nothing: a failing meta leaves no batch, and the stored ones come back,
// each its own entry, after a reopen.
func TestAppendAllAllOrNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.spool")
	lay := Layout{Path: path, Lanes: lanesAB()}
	s, err := Open(lay, Config{})
	require.NoError(t, err)
	boom := errors.New("boom")
	_, err = s.AppendAll([]*transport.Envelope{env(1, 2), env(2, 3), env(3, 1)}, func(tx Tx) error {
		require.NoError(t, tx.Put(metaBucket, []byte("state"), []byte("ahead")))
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "batches 1-3")
	for _, name := range []string{"a", "b"} {
		n, m := s.Lane(name).Pending()
		require.Equal(t, 0, n, "lane %s: a failing meta stores no batch", name)
		require.Equal(t, 0, m)
	}
	require.NoError(t, s.View(func(tx Tx) error {
		require.Nil(t, tx.Get(metaBucket, []byte("state")), "nor its metadata")
		return nil
	}))

	drops, err := s.AppendAll([]*transport.Envelope{env(4, 2), env(5, 3), env(6, 1)}, func(tx Tx) error {
		return tx.Put(metaBucket, []byte("state"), []byte("after 6"))
	})
	require.NoError(t, err)
	require.Empty(t, drops)
	for _, name := range []string{"a", "b"} {
		n, m := s.Lane(name).Pending()
		require.Equal(t, 3, n, "lane %s: one entry a batch", name)
		require.Equal(t, 6, m)
		require.Equal(t, []uint64{4, 5, 6}, seqs(t, s.Lane(name)))
	}
	// The next append goes on after them.
	_, err = s.Append(env(7, 1), nil)
	require.NoError(t, err)
	require.Equal(t, []uint64{4, 5, 6, 7}, seqs(t, s.Lane("a")))
	require.NoError(t, s.Close())

	s = open(t, lay, Config{})
	require.Equal(t, []uint64{4, 5, 6, 7}, seqs(t, s.Lane("b")), "after a reopen")
	require.NoError(t, s.View(func(tx Tx) error {
		require.Equal(t, "after 6", string(tx.Get(metaBucket, []byte("state"))))
		return nil
	}))
	// Each stored frame is its envelope's wire encoding.
	l := s.Lane("a")
	l.s.mu.Lock()
	id := l.entries[1].id
	l.s.mu.Unlock()
	frame, seq, err := l.Read(id, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(5), seq)
	want, err := transport.AppendEnvelope(nil, env(5, 3))
	require.NoError(t, err)
	require.Equal(t, want, frame)

	// An empty envs runs meta alone.
	_, err = s.AppendAll(nil, func(tx Tx) error { return tx.Put(metaBucket, []byte("state"), []byte("idle")) })
	require.NoError(t, err)
	require.NoError(t, s.View(func(tx Tx) error {
		require.Equal(t, "idle", string(tx.Get(metaBucket, []byte("state"))))
		return nil
	}))
}

// The bound holds for the batches' total: the oldest batches are dropped
// for all of them at once, and batches that do not fit together are not
// stored at all, even when each would fit alone.
func TestAppendAllBoundsTheTotal(t *testing.T) {
	frame, err := transport.AppendEnvelope(nil, env(1, 2))
	require.NoError(t, err)
	size := int64(4 + len(frame))
	s := open(t, Layout{Path: filepath.Join(t.TempDir(), "s.spool"), Lanes: lanesAB()}, Config{MaxBytes: 4 * size})
	for seq := uint64(1); seq <= 3; seq++ {
		_, err := s.Append(env(seq, 2), nil)
		require.NoError(t, err)
	}
	drops, err := s.AppendAll([]*transport.Envelope{env(4, 2), env(5, 2), env(6, 2)}, nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []Dropped{{Lane: "a", Batches: 2, Measurements: 4}, {Lane: "b", Batches: 2, Measurements: 4}}, drops,
		"room for three made at once: two of the oldest dropped")
	require.Equal(t, []uint64{3, 4, 5, 6}, seqs(t, s.Lane("a")))
	n, m := s.Lane("b").Pending()
	require.Equal(t, 4, n)
	require.Equal(t, 8, m)

	_, err = s.AppendAll([]*transport.Envelope{env(7, 2), env(8, 2), env(9, 2), env(10, 2), env(11, 2)}, nil)
	require.ErrorContains(t, err, "over the spool bound", "five batches of a size four of which fill the bound")
	require.Equal(t, []uint64{3, 4, 5, 6}, seqs(t, s.Lane("b")), "none stored, none dropped")

	// Batches kept by AppendKept are never dropped: when the rest cannot
	// make room for the total, nothing is stored.
	s2 := open(t, Layout{Path: filepath.Join(t.TempDir(), "k.spool"), Lanes: lanesAB()}, Config{MaxBytes: 4 * size})
	for seq := uint64(1); seq <= 2; seq++ {
		_, err := s2.AppendKept(env(seq, 2), nil)
		require.NoError(t, err)
	}
	_, err = s2.Append(env(3, 2), nil)
	require.NoError(t, err)
	_, err = s2.AppendAll([]*transport.Envelope{env(4, 2), env(5, 2), env(6, 2)}, nil)
	require.ErrorIs(t, err, ErrFull)
	require.ErrorContains(t, err, "do not fit")
	require.Equal(t, []uint64{1, 2, 3}, seqs(t, s2.Lane("a")), "nothing dropped for batches that were not stored")
	drops, err = s2.AppendAll([]*transport.Envelope{env(4, 2), env(5, 2)}, nil)
	require.NoError(t, err)
	require.Len(t, drops, 2)
	require.Equal(t, []uint64{1, 2, 4, 5}, seqs(t, s2.Lane("a")))
}
