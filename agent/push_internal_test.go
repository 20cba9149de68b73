package agent

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeyWindowEvictsOldest(t *testing.T) {
	w := newKeyWindow(3)
	w.apply(w.plan([]string{"a", "b"}))
	w.apply(w.plan([]string{"b", "c", "c"})) // b is known, c once
	require.Equal(t, []string{"a", "b", "c"}, w.ring)
	p := w.plan([]string{"d", "e"})
	require.Equal(t, []string{"a", "b"}, p.evict)
	require.Equal(t, uint64(4), p.first)
	w.apply(p)
	require.Equal(t, []string{"c", "d", "e"}, w.ring)
	require.False(t, w.has("a"))
	require.False(t, w.has("b"))
	require.True(t, w.has("e"))
	require.Equal(t, uint64(5), w.ids["e"])
	require.Len(t, w.ids, 3)
	w.apply(w.plan(nil))
	require.Len(t, w.ring, 3)
}
