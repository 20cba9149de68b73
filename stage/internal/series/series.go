// Package series is the per-series memory of the stages that keep the last
// point of each series (rate, delta) or a state in its place (levels): a
// table keyed without per-measurement string keys, bounded in size,
// forgetting idle series, and checkpointed as JSON sorted for stable bytes.
// It is shared machinery, not public API.
package series

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"iter"
	"math"
	"slices"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage/internal/hint"
)

// Series is one series' identity and last point, with room for what a stage
// caches about it: P, of the stage's own type.
type Series[P any] struct {
	gone bool // forgotten: hints must not use it

	// T and V are the last point: unix ns and value. A stage that keeps a
	// state rather than a value (levels) keeps it in V, and T is when the
	// series was last seen; the sweep forgets by T.
	T int64
	V float64

	name, host, resource, project, user string
	labels                              []meter.Label // without the table's ignored key
	next                                *Series[P]    // same hash

	// P is for the stage's own use, never checkpointed.
	P P
}

// Table holds the series, each with a P of the stage's own.
type Table[P any] struct {
	ignore      string // a label key left out of a series' identity
	maxSeries   int
	forgetAfter int64 // ns

	seed   maphash.Seed
	h      maphash.Hash
	series map[uint64]*Series[P]
	count  int
	hint   []*Series[P] // the series at each position of the last batch
	newest int64        // the latest measurement time seen, unix ns
	swept  int64        // newest at the last sweep
}

// New returns an empty table of at most maxSeries series, forgetting those
// not seen for forgetAfter (by measurement time). A label with key ignore
// (when not empty) is not part of a series' identity.
func New[P any](ignore string, maxSeries int, forgetAfter time.Duration) *Table[P] {
	return &Table[P]{ignore: ignore, maxSeries: maxSeries, forgetAfter: int64(forgetAfter), seed: maphash.MakeSeed(), series: map[uint64]*Series[P]{}}
}

// Begin readies the table for a batch of n measurements.
func (t *Table[P]) Begin(n int) {
	if cap(t.hint) < n {
		t.hint = make([]*Series[P], n)
	}
	t.hint = t.hint[:n]
}

// Get returns the series of m, the measurement at position i of the batch,
// and whether it was made now (it then has no point yet); nil past the
// bound.
func (t *Table[P]) Get(i int, m *meter.Measurement) (s *Series[P], fresh bool) {
	if s = t.Hinted(i, m); s != nil {
		t.newest = max(t.newest, m.Time.UnixNano())
		return s, false
	}
	return t.Find(i, m)
}

// Hinted returns the series of m, the measurement at position i of the
// batch, when it is the one at i in the last batch, or nil: a stage that
// selects measurements can try it before it matches m's name, when only
// the measurements it selects have a series. It notes no time: the stage
// calls Seen.
func (t *Table[P]) Hinted(i int, m *meter.Measurement) *Series[P] {
	if s := t.hint[i]; t.is(s, m) {
		return s
	}
	return nil
}

// Seen notes that s was seen at tm (unix ns), in its T unless it was seen
// later, for a stage that keeps a state in V rather than a last point.
func (t *Table[P]) Seen(s *Series[P], tm int64) {
	if tm > s.T { // else newest, never below a T, is not below tm either
		s.T = tm
		t.newest = max(t.newest, tm)
	}
}

// Find is Get without the hint: it looks m up, makes its series when there
// is none (fresh), and keeps it as the hint at i; nil past the bound.
func (t *Table[P]) Find(i int, m *meter.Measurement) (s *Series[P], fresh bool) {
	t.newest = max(t.newest, m.Time.UnixNano())
	s, fresh = t.lookup(m)
	t.hint[i] = s
	return s, fresh
}

// Step is what Advance found of a measurement against its series' last
// point.
type Step int

const (
	Unbounded Step = iota // no series: the table is full (the stage passes m on, counted dropped)
	First                 // the series' first point: nothing to compare it with
	Backward              // not later than the last point: dropped, the last point kept
	Reset                 // a value below the last one: a counter reset
	Advanced              // later and not lower: dt and dv are the step
)

// Advance is Get for a cumulative series: it moves the series of m (at
// position i of the batch) to m's point, except a point not later than
// the last one, and says what that step was. dt (ns) and dv are the step
// when it is Advanced. Rate and delta both walk a cumulative this way.
func (t *Table[P]) Advance(i int, m *meter.Measurement) (s *Series[P], dt int64, dv float64, st Step) {
	s, fresh := t.Get(i, m)
	if s == nil {
		return nil, 0, 0, Unbounded
	}
	tm, v := m.Time.UnixNano(), m.Value
	if fresh {
		s.T, s.V = tm, v
		return s, 0, 0, First
	}
	dt, dv = tm-s.T, v-s.V
	switch {
	case dt <= 0:
		return s, 0, 0, Backward
	case dv < 0:
		s.T, s.V = tm, v
		return s, 0, 0, Reset
	}
	s.T, s.V = tm, v
	return s, dt, dv, Advanced
}

// Skip notes that position i of the batch holds no series.
func (t *Table[P]) Skip(i int) { t.hint[i] = nil }

// End sweeps the idle series when it is time to.
func (t *Table[P]) End() {
	if t.newest-t.swept > t.forgetAfter/2 {
		t.sweep()
	}
}

// Len returns the number of series held.
func (t *Table[P]) Len() int { return t.count }

// All yields the series held, in no order.
func (t *Table[P]) All() iter.Seq[*Series[P]] {
	return func(yield func(*Series[P]) bool) {
		for _, first := range t.series {
			for s := first; s != nil; s = s.next {
				if !yield(s) {
					return
				}
			}
		}
	}
}

// Name returns the series' meter name.
func (s *Series[P]) Name() string { return s.name }

// Labels returns the series' labels, without the table's ignored key; the
// caller must not change them.
func (s *Series[P]) Labels() []meter.Label { return s.labels }

// is reports whether m is of s, a series (not nil) not forgotten.
func (t *Table[P]) is(s *Series[P], m *meter.Measurement) bool {
	if s == nil || s.gone {
		return false
	}
	if !hint.Same(s.name, m.Name) || !hint.Same(s.host, m.Host) || !hint.Same(s.resource, m.ResourceID) ||
		!hint.Same(s.project, m.ProjectID) || !hint.Same(s.user, m.UserID) {
		return false
	}
	j, ignore := 0, t.ignore
	for _, lb := range m.Labels {
		if lb.Key == ignore {
			continue
		}
		if j >= len(s.labels) || !hint.Same(s.labels[j].Key, lb.Key) || !hint.Same(s.labels[j].Value, lb.Value) {
			return false
		}
		j++
	}
	return j == len(s.labels)
}

func (t *Table[P]) hash(m *meter.Measurement) uint64 {
	h := &t.h
	h.SetSeed(t.seed)
	for _, s := range [...]string{m.Name, m.Host, m.ResourceID, m.ProjectID, m.UserID} {
		h.WriteString(s)
		h.WriteByte(0)
	}
	for _, lb := range m.Labels {
		if lb.Key == t.ignore {
			continue
		}
		h.WriteString(lb.Key)
		h.WriteByte(0)
		h.WriteString(lb.Value)
		h.WriteByte(0)
	}
	return h.Sum64()
}

func (t *Table[P]) lookup(m *meter.Measurement) (*Series[P], bool) {
	k := t.hash(m)
	first := t.series[k]
	for s := first; s != nil; s = s.next {
		if t.is(s, m) {
			return s, false
		}
	}
	if t.count >= t.maxSeries {
		return nil, false
	}
	s := &Series[P]{name: m.Name, host: m.Host, resource: m.ResourceID, project: m.ProjectID, user: m.UserID, next: first}
	for _, lb := range m.Labels {
		if lb.Key != t.ignore {
			s.labels = append(s.labels, lb)
		}
	}
	t.series[k] = s
	t.count++
	return s, true
}

// sweep forgets the series not seen for forgetAfter.
func (t *Table[P]) sweep() {
	t.swept = t.newest
	cut := t.newest - t.forgetAfter
	for k, first := range t.series {
		var keep *Series[P]
		for s := first; s != nil; {
			next := s.next
			if s.T < cut {
				s.gone = true
				t.count--
			} else {
				s.next, keep = keep, s
			}
			s = next
		}
		if keep == nil {
			delete(t.series, k)
		} else {
			t.series[k] = keep
		}
	}
}

// state is the checkpoint's form: the series sorted, for the same state to
// give the same bytes.
type state struct {
	Version int           `json:"version"`
	Series  []seriesState `json:"series"`
}

type seriesState struct {
	Name     string        `json:"name"`
	Host     string        `json:"host,omitempty"`
	Resource string        `json:"resource,omitempty"`
	Project  string        `json:"project,omitempty"`
	User     string        `json:"user,omitempty"`
	Labels   []meter.Label `json:"labels,omitempty"`
	Time     int64         `json:"t"` // unix ns
	Value    float64       `json:"v"`
}

// Checkpoint returns the last point of every series, as JSON.
func (t *Table[P]) Checkpoint() ([]byte, error) {
	st := state{Version: 1, Series: make([]seriesState, 0, t.count)}
	for s := range t.All() {
		st.Series = append(st.Series, seriesState{s.name, s.host, s.resource, s.project, s.user, s.labels, s.T, s.V})
	}
	slices.SortFunc(st.Series, func(a, b seriesState) int {
		if c := cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Host, b.Host), cmp.Compare(a.Resource, b.Resource),
			cmp.Compare(a.Project, b.Project), cmp.Compare(a.User, b.User)); c != 0 {
			return c
		}
		return slices.CompareFunc(a.Labels, b.Labels, func(x, y meter.Label) int {
			return cmp.Or(cmp.Compare(x.Key, y.Key), cmp.Compare(x.Value, y.Value))
		})
	})
	return json.Marshal(st)
}

// Restore replaces the series held with those of a checkpoint; on an error
// the table is as it was. Errors have no prefix: the stage adds its own.
func (t *Table[P]) Restore(b []byte) error {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	if st.Version != 1 {
		return fmt.Errorf("state version %d; this stage reads version 1", st.Version)
	}
	fresh := &Table[P]{ignore: t.ignore, seed: t.seed, series: make(map[uint64]*Series[P], len(st.Series)), maxSeries: math.MaxInt}
	for i, ss := range st.Series {
		if ss.Name == "" || math.IsNaN(ss.Value) || math.IsInf(ss.Value, 0) {
			return fmt.Errorf("series %d (%q): no name or a value that is not finite", i, ss.Name)
		}
		m := meter.Measurement{Name: ss.Name, Host: ss.Host, ResourceID: ss.Resource, ProjectID: ss.Project, UserID: ss.User, Labels: ss.Labels}
		s, made := fresh.lookup(&m)
		if !made {
			return fmt.Errorf("series %d (%q): given twice", i, ss.Name)
		}
		s.T, s.V = ss.Time, ss.Value
		fresh.newest = max(fresh.newest, ss.Time)
	}
	for s := range t.All() {
		s.gone = true
	}
	t.series, t.count, t.newest, t.swept = fresh.series, fresh.count, fresh.newest, fresh.newest
	return nil
}
