package series

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func point(res string, min int, labels ...meter.Label) meter.Measurement {
	return meter.Measurement{Name: "c", Kind: meter.Cumulative, Time: t0.Add(time.Duration(min) * time.Minute), ResourceID: res, Labels: labels}
}

func TestTableIdentityIgnoresOneLabel(t *testing.T) {
	tab := New[struct{}]("vcpus", 10, time.Hour)
	a := point("r", 0, meter.Label{Key: "name", Value: "vm"}, meter.Label{Key: "vcpus", Value: "1"})
	b := point("r", 1, meter.Label{Key: "name", Value: "vm"}, meter.Label{Key: "vcpus", Value: "2"})
	c := point("r", 1, meter.Label{Key: "name", Value: "other"})
	tab.Begin(1)
	s1, fresh := tab.Get(0, &a)
	require.True(t, fresh)
	s2, fresh := tab.Get(0, &b)
	require.False(t, fresh)
	require.Same(t, s1, s2, "vcpus is not part of the identity")
	s3, fresh := tab.Get(0, &c)
	require.True(t, fresh)
	require.NotSame(t, s1, s3)
	require.Equal(t, 2, tab.Len())
}

// Series whose hashes collide are told apart: a table whose hash is made
// to collide by giving two series one bucket.
func TestTableCollisions(t *testing.T) {
	tab := New[struct{}]("", 10, time.Hour)
	a, b := point("a", 0), point("b", 0)
	tab.Begin(2)
	sa, _ := tab.lookup(&a)
	// Move a under b's hash, as a collision would put it.
	delete(tab.series, tab.hash(&a))
	sa.next = nil
	tab.series[tab.hash(&b)] = sa
	sb, fresh := tab.lookup(&b)
	require.True(t, fresh)
	require.NotSame(t, sa, sb)
	require.Same(t, sa, sb.next)
	again, fresh := tab.lookup(&b)
	require.False(t, fresh)
	require.Same(t, sb, again)
}

func TestTableBoundsAndSweep(t *testing.T) {
	tab := New[struct{}]("", 2, 10*time.Minute)
	tab.Begin(3)
	for i, res := range []string{"a", "b", "c"} {
		m := point(res, 0)
		s, _ := tab.Get(i, &m)
		if i < 2 {
			require.NotNil(t, s)
			s.T = m.Time.UnixNano()
		} else {
			require.Nil(t, s, "past max series")
		}
	}
	tab.End()
	for min := 1; min <= 20; min++ {
		m := point("a", min)
		s, _ := tab.Get(0, &m)
		s.T = m.Time.UnixNano()
		tab.End()
	}
	require.Equal(t, 1, tab.Len(), "b, idle for 20 min, is forgotten")
	m := point("b", 21)
	hinted := tab.hint[1]
	require.True(t, hinted == nil || hinted.gone)
	_, fresh := tab.Get(1, &m)
	require.True(t, fresh)
}

func FuzzTableRestore(f *testing.F) {
	tab := New[struct{}]("x", 10, time.Hour)
	tab.Begin(2)
	for i, res := range []string{"a", "b"} {
		m := point(res, i, meter.Label{Key: "k", Value: res})
		s, _ := tab.Get(i, &m)
		s.T, s.V = m.Time.UnixNano(), float64(i)+0.1
	}
	good, err := tab.Checkpoint()
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte(`{"version":1,"series":[{"name":"a","t":1,"v":1},{"name":"a","t":1,"v":1}]}`))
	f.Add([]byte(`{"version":1,"series":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tab := New[struct{}]("x", 10, time.Hour)
		before, err := tab.Checkpoint()
		require.NoError(t, err)
		if err := tab.Restore(b); err != nil {
			after, err := tab.Checkpoint()
			require.NoError(t, err)
			require.Equal(t, before, after, "a failed restore changes nothing")
			return
		}
		once, err := tab.Checkpoint()
		require.NoError(t, err)
		again := New[struct{}]("x", 10, time.Hour)
		require.NoError(t, again.Restore(once))
		twice, err := again.Checkpoint()
		require.NoError(t, err)
		require.Equal(t, string(once), string(twice), "what a restored table gives out, it takes back the same")
	})
}

// Advance walks a cumulative: the first point, a step, a point not later
// than the last (kept out), a reset, and a series past the bound.
func TestTableAdvance(t *testing.T) {
	tab := New[struct{}]("", 1, time.Hour)
	walk := func(m meter.Measurement) (int64, float64, Step) {
		tab.Begin(1)
		defer tab.End()
		_, dt, dv, st := tab.Advance(0, &m)
		return dt, dv, st
	}
	at := func(min int, v float64) meter.Measurement { m := point("r", min); m.Value = v; return m }
	_, _, st := walk(at(0, 10))
	require.Equal(t, First, st)
	dt, dv, st := walk(at(1, 16))
	require.Equal(t, Advanced, st)
	require.Equal(t, int64(time.Minute), dt)
	require.Equal(t, 6.0, dv)
	_, _, st = walk(at(1, 20))
	require.Equal(t, Backward, st, "not later than the last point")
	_, _, st = walk(at(2, 3))
	require.Equal(t, Reset, st)
	dt, dv, st = walk(at(3, 5))
	require.Equal(t, Advanced, st, "the reset's point is the last one")
	require.Equal(t, int64(time.Minute), dt)
	require.Equal(t, 2.0, dv)
	_, _, st = walk(point("other", 3))
	require.Equal(t, Unbounded, st, "one series at most")
}

// A stage that selects measurements tries the hint first, and looks up only
// what it selects: Hinted finds the series at the same position only, and
// notes no time (Seen does); Find notes the time and makes the hint.
func TestTableHintedAndFind(t *testing.T) {
	tab := New[int]("", 10, time.Hour)
	a, b := point("a", 0), point("b", 0)
	tab.Begin(2)
	require.Nil(t, tab.Hinted(0, &a), "no hint yet")
	sa, fresh := tab.Find(0, &a)
	require.True(t, fresh)
	require.Equal(t, a.Time.UnixNano(), tab.newest)
	sa.P = 7
	later := point("a", 5)
	tab.Begin(2)
	require.Same(t, sa, tab.Hinted(0, &later))
	require.Equal(t, a.Time.UnixNano(), tab.newest)
	tab.Seen(sa, later.Time.UnixNano())
	tab.Seen(sa, a.Time.UnixNano())
	require.Equal(t, later.Time.UnixNano(), tab.newest)
	require.Equal(t, later.Time.UnixNano(), sa.T, "the latest time seen")
	require.Nil(t, tab.Hinted(1, &later), "not the series at position 1")
	require.Nil(t, tab.Hinted(0, &b), "not the series of b")
	tab.Skip(0)
	require.Nil(t, tab.Hinted(0, &later))
	again, fresh := tab.Find(1, &later)
	require.False(t, fresh)
	require.Same(t, sa, again)
	require.Equal(t, 7, again.P, "P is the stage's, kept with the series")
}

// P is never checkpointed; All yields every series, and Name and Labels
// its identity.
func TestTablePayloadAndAll(t *testing.T) {
	tab := New[[]string]("x", 10, time.Hour)
	tab.Begin(2)
	for i, res := range []string{"a", "b"} {
		m := point(res, i, meter.Label{Key: "k", Value: res}, meter.Label{Key: "x", Value: "ignored"})
		s, _ := tab.Get(i, &m)
		s.T, s.P = m.Time.UnixNano(), []string{res}
	}
	got := map[string]string{}
	for s := range tab.All() {
		require.Equal(t, "c", s.Name())
		require.Len(t, s.Labels(), 1, "without the ignored key")
		got[s.Labels()[0].Value] = s.P[0]
	}
	require.Equal(t, map[string]string{"a": "a", "b": "b"}, got)
	b, err := tab.Checkpoint()
	require.NoError(t, err)
	back := New[[]string]("x", 10, time.Hour)
	require.NoError(t, back.Restore(b))
	require.Equal(t, 2, back.Len())
	for s := range back.All() {
		require.Nil(t, s.P)
	}
}
