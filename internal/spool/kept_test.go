package spool

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport"
)

// laneSeqs lists the Seq of every batch of lane l, oldest first, taking and
// releasing them.
func laneSeqs(t *testing.T, l *Lane) []uint64 {
	t.Helper()
	var out []uint64
	var ids []uint64
	for {
		n, _ := l.Pending()
		if len(ids) == n {
			break
		}
		e, ok := l.Next(context.Background())
		require.True(t, ok)
		_, seq, err := l.Read(e.ID, nil)
		require.NoError(t, err)
		out = append(out, seq)
		ids = append(ids, e.ID)
	}
	for _, id := range ids {
		l.Release(id, false)
	}
	return out
}

func TestKeptBatchesAreNeverDroppedToMakeRoom(t *testing.T) {
	frame, err := transport.AppendEnvelope(nil, env(1, 2))
	require.NoError(t, err)
	size := int64(4 + len(frame))
	path := filepath.Join(t.TempDir(), "s.spool")
	lanes := []LaneSpec{{Name: "a", Bucket: []string{"a"}}}
	s, err := Open(Layout{Path: path, Lanes: lanes}, Config{MaxBytes: 3 * size})
	require.NoError(t, err)
	l := s.Lane("a")

	_, err = s.AppendKept(env(1, 2), nil)
	require.NoError(t, err)
	_, err = s.Append(env(2, 2), nil)
	require.NoError(t, err)
	_, err = s.AppendKept(env(3, 2), nil)
	require.NoError(t, err)
	require.False(t, l.Room(size), "the lane is full")
	require.True(t, l.RoomKept(size), "a kept batch may push out the unkept one")

	// An unkept batch drops the unkept one, not the older kept one.
	drops, err := s.Append(env(4, 2), nil)
	require.NoError(t, err)
	require.Equal(t, []Dropped{{Lane: "a", Batches: 1, Measurements: 2}}, drops)
	require.Equal(t, []uint64{1, 3, 4}, laneSeqs(t, l))

	// A kept batch drops the unkept one too.
	drops, err = s.AppendKept(env(5, 2), nil)
	require.NoError(t, err)
	require.Equal(t, []Dropped{{Lane: "a", Batches: 1, Measurements: 2}}, drops)
	require.Equal(t, []uint64{1, 3, 5}, laneSeqs(t, l))
	require.False(t, l.RoomKept(size), "kept batches fill the bound")

	// Full of kept batches: an unkept batch is refused, the kept ones stay.
	_, err = s.Append(env(6, 2), nil)
	require.ErrorIs(t, err, ErrFull)
	require.ErrorContains(t, err, "s.spool")
	require.Equal(t, []uint64{1, 3, 5}, laneSeqs(t, l))

	// The mark survives a restart: after it, kept batches are still kept.
	require.NoError(t, s.Close())
	s, err = Open(Layout{Path: path, Lanes: lanes}, Config{MaxBytes: 3 * size})
	require.NoError(t, err)
	defer s.Close()
	l = s.Lane("a")
	n, m := l.Pending()
	require.Equal(t, 3, n)
	require.Equal(t, 6, m, "the mark does not change the count read back")
	require.False(t, l.RoomKept(size))
	_, err = s.Append(env(7, 2), nil)
	require.ErrorIs(t, err, ErrFull)

	// Delivering a kept batch makes room for kept batches again.
	e, ok := l.Next(context.Background())
	require.True(t, ok)
	require.NoError(t, l.Done(e.ID))
	require.True(t, l.RoomKept(size))
	_, err = s.AppendKept(env(8, 2), nil)
	require.NoError(t, err)
	require.Equal(t, []uint64{3, 5, 8}, laneSeqs(t, l))
}
