package web

import (
	"hash/maphash"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/meterkit/meter"
)

// DefaultMaxBytes is the memory bound of a Sink made without WithMaxBytes.
const DefaultMaxBytes = 32 << 20

// chunkLen is the number of points in one chunk of the log; memory is taken
// and given back a chunk at a time.
const chunkLen = 1024

// pointSize is what one point costs in the log: time, value, series slot and
// the offset to the series' next point.
const pointSize = 24

// chunkBytes is what one chunk of the log costs.
const chunkBytes = chunkLen * pointSize

// seriesOverhead approximates what a series costs besides its strings: its
// slot and its entries in the two maps. Measured: 100,000 series of one point
// took 422 bytes of heap each, strings and point included; Stats counts 423.
const seriesOverhead = int64(unsafe.Sizeof(series{})) + 136

// changeOverhead is what a state change held for the feed costs besides its
// strings.
const changeOverhead = int64(unsafe.Sizeof(change{}))

// labelOverhead is the cost of one label besides its strings.
const labelOverhead = 32

// record is one point in the log. next is the distance, in log positions, to
// the next point of the same series (0: none yet).
type record struct {
	t    int64 // Unix nanoseconds
	v    float64
	slot uint32
	next uint32
}

// series is the identity and recent history of one series. Its points are
// linked through the log, oldest first, from first to last.
type series struct {
	id    uint64 // stable while the series is held; never reused
	hash  uint64
	name  string
	kind  meter.Kind
	unit  string
	host  string
	res   string
	proj  string
	user  string
	ident []meter.Label // labels that tell series apart
	extra []meter.Label // labels with meter.ReservedPrefix, as last written
	bytes int64

	n           int    // points held
	first, last uint64 // log positions of the oldest and newest points (when n > 0)
	lastT       int64
	lastV       float64

	// Least recently written first: the series evicted when points alone
	// cannot bring the store under its bound.
	prev, nextLRU uint32
	live          bool
}

// Stats are the store's counters. Stats implements [slog.LogValuer]: each
// field tagged `log:"key"` is logged under that key, the convention of the
// agent's and publisher's stats lines.
type Stats struct {
	Series         int    `log:"series"`          // series held
	Points         int    `log:"points"`          // points held
	Bytes          int64  `log:"bytes"`           // memory counted against the bound: series and log chunks
	MaxBytes       int64  `log:"max_bytes"`       // the bound
	Written        uint64 `log:"written"`         // measurements written
	DroppedPoints  uint64 `log:"dropped_points"`  // points evicted to stay within the bound
	DroppedSeries  uint64 `log:"dropped_series"`  // series evicted to stay within the bound
	StateChanges   int    `log:"state_changes"`   // state changes held for the feed
	StreamsDropped uint64 `log:"streams_dropped"` // event streams that fell behind the log and resumed from its start
}

// LogValue returns the tagged fields as a group, in field order.
func (s Stats) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("series", s.Series),
		slog.Int("points", s.Points),
		slog.Int64("bytes", s.Bytes),
		slog.Int64("max_bytes", s.MaxBytes),
		slog.Uint64("written", s.Written),
		slog.Uint64("dropped_points", s.DroppedPoints),
		slog.Uint64("dropped_series", s.DroppedSeries),
		slog.Int("state_changes", s.StateChanges),
		slog.Uint64("streams_dropped", s.StreamsDropped),
	)
}

// store is the in-memory history. It is not safe for concurrent use: Sink
// guards it with a lock.
type store struct {
	maxBytes int64
	seed     maphash.Seed

	byHash map[uint64][]uint32 // hash -> slots (more than one on a collision)
	byID   map[uint64]uint32   // series id -> slot
	slots  []series            // slot 0 is the LRU list's sentinel
	free   []uint32
	nextID uint64
	nSer   int

	// The log: chunks hold positions [base, end); a position p lives in
	// chunks[(p-base)/chunkLen][(p-base)%chunkLen]. base is always a
	// multiple of chunkLen.
	chunks []*[chunkLen]record
	spare  *[chunkLen]record
	base   uint64
	end    uint64

	bytes  int64 // series bytes + chunk bytes
	points int

	written       uint64
	droppedPoints uint64
	droppedSeries uint64

	// The newest state changes, for the feed: a ring of at most feedLen.
	changes     []change
	changeStart int
	changeSeq   uint64
}

func (c *change) bytes() int64 {
	m := &c.m
	return changeOverhead + int64(len(m.Name)+len(m.Unit)+len(m.Host)+len(m.ResourceID)+len(m.ProjectID)+len(m.UserID)) +
		labelBytes(m.Labels)
}

// change is one meterkit.state.change measurement kept for the feed.
type change struct {
	seq uint64
	m   meter.Measurement
}

// feedLen is how many state changes the feed holds.
const feedLen = 500

func newStore(maxBytes int64) *store {
	s := &store{
		maxBytes: maxBytes,
		seed:     maphash.MakeSeed(),
		byHash:   make(map[uint64][]uint32),
		byID:     make(map[uint64]uint32),
		slots:    make([]series, 1),
	}
	return s
}

func (s *store) at(p uint64) *record {
	i := p - s.base
	return &s.chunks[i/chunkLen][i%chunkLen]
}

// hashOf hashes the identity of m: everything but the value, the time and
// the reserved labels. Each string is hashed on its own (no bytes copied
// into a buffer) and the hashes are mixed in field order; the labels'
// hashes are added, so that their order does not matter: {a=1,b=2} and
// {b=2,a=1} are one series.
func (s *store) hashOf(m *meter.Measurement) uint64 {
	var labels uint64
	for i := range m.Labels {
		l := &m.Labels[i]
		if strings.HasPrefix(l.Key, meter.ReservedPrefix) {
			continue
		}
		// Key and value play different parts: {a=b} is not {b=a}.
		labels += mix(maphash.String(s.seed, l.Key), maphash.String(s.seed, l.Value))
	}
	h := uint64(m.Kind) + 1
	h = mix(h, maphash.String(s.seed, m.Name))
	h = mix(h, maphash.String(s.seed, m.Unit))
	h = mix(h, maphash.String(s.seed, m.Host))
	h = mix(h, maphash.String(s.seed, m.ResourceID))
	h = mix(h, maphash.String(s.seed, m.ProjectID))
	h = mix(h, maphash.String(s.seed, m.UserID))
	return mix(h, labels)
}

// mix folds x into the hash h; the order of the calls matters.
func mix(h, x uint64) uint64 {
	h = (h ^ x) * 0x9e3779b97f4a7c15
	return h ^ h>>29
}

// sameLabels reports whether the labels of ls with (reserved) or without
// (!reserved) meter.ReservedPrefix are those of held, in any order. Keys are
// unique in a valid measurement, so equal counts and every label of ls found
// in held mean the same set.
func sameLabels(held, ls []meter.Label, reserved bool) bool {
	n := 0
	for j := range ls {
		l := &ls[j]
		if strings.HasPrefix(l.Key, meter.ReservedPrefix) != reserved {
			continue
		}
		n++
		if n > len(held) {
			return false
		}
		// In the order held first: a series is usually written with its
		// labels in the same order every time.
		if i := n - 1; held[i] == *l {
			continue
		}
		if !slices.Contains(held, *l) {
			return false
		}
	}
	return n == len(held)
}

func (se *series) same(m *meter.Measurement) bool {
	return se.name == m.Name && se.kind == m.Kind && se.unit == m.Unit && se.host == m.Host &&
		se.res == m.ResourceID && se.proj == m.ProjectID && se.user == m.UserID &&
		sameLabels(se.ident, m.Labels, false)
}

// sameExtra reports whether the reserved labels of m are those se holds,
// in any order.
func (se *series) sameExtra(m *meter.Measurement) bool {
	return sameLabels(se.extra, m.Labels, true)
}

func labelBytes(ls []meter.Label) int64 {
	var n int64
	for _, l := range ls {
		n += labelOverhead + int64(len(l.Key)+len(l.Value))
	}
	return n
}

func cloneLabels(ls []meter.Label, reserved bool) []meter.Label {
	var out []meter.Label
	for _, l := range ls {
		if strings.HasPrefix(l.Key, meter.ReservedPrefix) == reserved {
			out = append(out, meter.Label{Key: strings.Clone(l.Key), Value: strings.Clone(l.Value)})
		}
	}
	return out
}

// add stores m and returns its series' slot.
func (s *store) add(m *meter.Measurement) uint32 {
	s.written++
	hv := s.hashOf(m)
	var slot uint32
	for _, c := range s.byHash[hv] {
		if s.slots[c].same(m) {
			slot = c
			break
		}
	}
	if slot == 0 {
		slot = s.newSeries(hv, m)
	} else if se := &s.slots[slot]; !se.sameExtra(m) {
		s.bytes -= labelBytes(se.extra)
		se.extra = cloneLabels(m.Labels, true)
		s.bytes += labelBytes(se.extra)
	}
	s.touch(slot)

	// Append the point.
	if s.end-s.base == uint64(len(s.chunks))*chunkLen {
		c := s.spare
		s.spare = nil
		if c == nil {
			c = new([chunkLen]record)
		}
		s.chunks = append(s.chunks, c)
		s.bytes += chunkBytes
	}
	p := s.end
	s.end++
	*s.at(p) = record{t: m.Time.UnixNano(), v: m.Value, slot: slot}
	se := &s.slots[slot]
	if se.n == 0 {
		se.first = p
	} else {
		s.at(se.last).next = uint32(p - se.last)
	}
	se.last = p
	se.n++
	se.lastT, se.lastV = m.Time.UnixNano(), m.Value
	s.points++

	if m.Name == meter.StateChange {
		s.addChange(m)
	}
	s.evict(slot)
	return slot
}

func (s *store) newSeries(hv uint64, m *meter.Measurement) uint32 {
	var slot uint32
	if n := len(s.free); n > 0 {
		slot = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		s.slots = append(s.slots, series{})
		slot = uint32(len(s.slots) - 1)
	}
	s.nextID++
	se := &s.slots[slot]
	*se = series{
		id: s.nextID, hash: hv, live: true,
		name: strings.Clone(m.Name), kind: m.Kind, unit: strings.Clone(m.Unit),
		host: strings.Clone(m.Host), res: strings.Clone(m.ResourceID),
		proj: strings.Clone(m.ProjectID), user: strings.Clone(m.UserID),
		ident: cloneLabels(m.Labels, false), extra: cloneLabels(m.Labels, true),
	}
	se.bytes = seriesOverhead + int64(len(se.name)+len(se.unit)+len(se.host)+len(se.res)+len(se.proj)+len(se.user)) +
		labelBytes(se.ident)
	s.bytes += se.bytes + labelBytes(se.extra)
	s.byHash[hv] = append(s.byHash[hv], slot)
	s.byID[se.id] = slot
	s.nSer++
	// Link at the back of the LRU list (touch moves it there).
	se.prev, se.nextLRU = slot, slot
	return slot
}

// touch moves slot to the back of the LRU list (most recently written).
func (s *store) touch(slot uint32) {
	se := &s.slots[slot]
	if se.prev != slot { // linked: unlink
		s.slots[se.prev].nextLRU = se.nextLRU
		s.slots[se.nextLRU].prev = se.prev
	}
	sent := &s.slots[0]
	back := sent.prev
	se.prev, se.nextLRU = back, 0
	s.slots[back].nextLRU = slot
	sent.prev = slot
}

// evict brings the store back under its bound: the oldest chunks of points
// first, then the least recently written series (never keep, the series
// just written).
func (s *store) evict(keep uint32) {
	for s.bytes > s.maxBytes && len(s.chunks) > 1 {
		s.dropChunk()
	}
	for s.bytes > s.maxBytes {
		front := s.slots[0].nextLRU
		if front == 0 || front == keep {
			return
		}
		s.dropSeries(front)
	}
}

// dropChunk evicts the oldest chunk of the log, all of its points.
func (s *store) dropChunk() {
	c := s.chunks[0]
	for i := range c {
		p := s.base + uint64(i)
		if p >= s.end {
			break
		}
		r := &c[i]
		se := &s.slots[r.slot]
		if !se.live || se.n == 0 || se.first != p {
			continue // a point of a series already dropped
		}
		se.n--
		s.points--
		s.droppedPoints++
		if se.n > 0 {
			se.first = p + uint64(r.next)
		}
	}
	s.chunks[0] = nil
	s.chunks = s.chunks[1:]
	s.base += chunkLen
	s.bytes -= chunkBytes
	clear(c[:])
	s.spare = c
}

// dropSeries evicts a series and whatever points of it the log holds (they
// stay in their chunks, as dead points, until the chunk goes).
func (s *store) dropSeries(slot uint32) {
	se := &s.slots[slot]
	s.points -= se.n
	s.droppedPoints += uint64(se.n)
	s.droppedSeries++
	s.bytes -= se.bytes + labelBytes(se.extra)
	s.slots[se.prev].nextLRU = se.nextLRU
	s.slots[se.nextLRU].prev = se.prev
	list := s.byHash[se.hash]
	if i := slices.Index(list, slot); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(s.byHash, se.hash)
	} else {
		s.byHash[se.hash] = list
	}
	delete(s.byID, se.id)
	*se = series{}
	s.free = append(s.free, slot)
	s.nSer--
}

func (s *store) addChange(m *meter.Measurement) {
	s.changeSeq++
	c := change{seq: s.changeSeq, m: *m}
	c.m.Name = meter.StateChange // the constant, not the caller's string
	c.m.Unit = strings.Clone(m.Unit)
	c.m.Host, c.m.ResourceID = strings.Clone(m.Host), strings.Clone(m.ResourceID)
	c.m.ProjectID, c.m.UserID = strings.Clone(m.ProjectID), strings.Clone(m.UserID)
	c.m.Labels = cloneLabels(m.Labels, false)
	c.m.Labels = append(c.m.Labels, cloneLabels(m.Labels, true)...)
	s.bytes += c.bytes()
	if len(s.changes) < feedLen {
		s.changes = append(s.changes, c)
		return
	}
	s.bytes -= s.changes[s.changeStart].bytes()
	s.changes[s.changeStart] = c
	s.changeStart = (s.changeStart + 1) % feedLen
}

// newestChanges returns the state changes held, newest first.
func (s *store) newestChanges() []change {
	out := make([]change, 0, len(s.changes))
	for i := len(s.changes) - 1; i >= 0; i-- {
		out = append(out, s.changes[(s.changeStart+i)%len(s.changes)])
	}
	return out
}

func (s *store) stats() Stats {
	return Stats{
		Series: s.nSer, Points: s.points, Bytes: s.bytes, MaxBytes: s.maxBytes,
		Written: s.written, DroppedPoints: s.droppedPoints, DroppedSeries: s.droppedSeries,
		StateChanges: len(s.changes),
	}
}

// measurement rebuilds the measurement of se at a point.
func (se *series) measurement(t int64, v float64) meter.Measurement {
	m := meter.Measurement{Name: se.name, Kind: se.kind, Unit: se.unit, Value: v, Time: time.Unix(0, t).UTC(),
		Host: se.host, ResourceID: se.res, ProjectID: se.proj, UserID: se.user}
	if n := len(se.ident) + len(se.extra); n > 0 {
		m.Labels = make([]meter.Label, 0, n)
		m.Labels = append(append(m.Labels, se.ident...), se.extra...)
	}
	return m
}

// points calls f for each point of se held, oldest first, with time in
// [from, to] (Unix nanoseconds).
func (s *store) pointsOf(se *series, from, to int64, f func(t int64, v float64)) {
	p := se.first
	for i := 0; i < se.n; i++ {
		r := s.at(p)
		if r.t >= from && r.t <= to {
			f(r.t, r.v)
		}
		p += uint64(r.next)
	}
}

// all returns every point held, as measurements, in the order written.
func (s *store) all() []meter.Measurement {
	var out []meter.Measurement
	for p := s.base; p < s.end; p++ {
		r := s.at(p)
		se := &s.slots[r.slot]
		if !se.live || se.n == 0 || p < se.first {
			continue
		}
		out = append(out, se.measurement(r.t, r.v))
	}
	return out
}
