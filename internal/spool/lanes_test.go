package spool

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDetachedLanesKeepTheirBatchesAcrossReopenAndAttachAgain(t *testing.T) {
	dir := t.TempDir()
	lanes := func(names ...string) []LaneSpec {
		var out []LaneSpec
		for _, n := range names {
			out = append(out, LaneSpec{Name: n, Bucket: []string{"lanes", n}})
		}
		return out
	}
	lay := Layout{Path: filepath.Join(dir, "s.spool"), Marks: filepath.Join(dir, "s.marks"), Lanes: lanes("a", "b"), Others: []string{"lanes"}}
	s, err := Open(lay, Config{})
	require.NoError(t, err)
	_, err = s.Append(env(1, 2), nil)
	require.NoError(t, err)
	require.True(t, s.Detach("b"))
	require.False(t, s.Detach("nope"))
	_, err = s.Append(env(2, 5), nil)
	require.NoError(t, err)
	n, m := s.Lane("b").Pending()
	require.Equal(t, []int{1, 2}, []int{n, m}, "a detached lane takes no appends")
	n, _ = s.Lane("a").Pending()
	require.Equal(t, 2, n)
	c, err := s.Attach(LaneSpec{Name: "c", Bucket: []string{"lanes", "c"}})
	require.NoError(t, err)
	_, err = s.Append(env(3, 1), nil)
	require.NoError(t, err)
	n, _ = c.Pending()
	require.Equal(t, 1, n, "an attached lane takes appends from then on")
	require.NoError(t, s.Close())

	// Reopened with lane a alone: b and c are found, detached, with their batches.
	lay.Lanes = lanes("a")
	s, err = Open(lay, Config{})
	require.NoError(t, err)
	defer s.Close()
	var names []string
	for _, l := range s.Lanes() {
		names = append(names, l.Name())
		require.Equal(t, l.Name() != "a", l.Detached())
	}
	require.Equal(t, []string{"a", "b", "c"}, names)
	_, err = s.Append(env(4, 1), nil)
	require.NoError(t, err)
	n, _ = s.Lane("b").Pending()
	require.Equal(t, 1, n)
	b, err := s.Attach(LaneSpec{Name: "b", Bucket: []string{"lanes", "b"}})
	require.NoError(t, err)
	require.False(t, b.Detached())
	e, ok := b.Next(context.Background())
	require.True(t, ok)
	require.True(t, e.Doubt, "batches from an earlier run are in doubt")
	require.Equal(t, 2, e.Count, "the batch kept while detached comes first")
	require.NoError(t, b.Done(e.ID))
	_, err = s.Append(env(5, 7), nil)
	require.NoError(t, err)
	n, m = b.Pending()
	require.Equal(t, []int{1, 7}, []int{n, m})
}
