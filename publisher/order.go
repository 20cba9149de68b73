package publisher

import (
	"cmp"
	"encoding/binary"
	"slices"
	"time"
)

// The order of each source (tenant, agent) is bounded: a source that sent
// nothing staged for orderForgetAfter is forgotten, and past
// orderMaxSources sources the longest silent are forgotten, counted in
// Stats.OrderForgotten. A forgotten source starts again: its next batch is
// in order, whatever its sequence (as the de-duplication window, which
// forgets in its own time, lets through). With stateful stages the spool
// forgets it too, in the transaction of the next batch committed.
const (
	orderForgetAfter = 24 * time.Hour
	orderMaxSources  = 100_000
)

// orderBounds are the bounds of the order kept, fields so that tests may
// narrow them.
type orderBounds struct {
	forgetAfter time.Duration
	maxSources  int
	now         func() time.Time
}

var defaultOrderBounds = orderBounds{forgetAfter: orderForgetAfter, maxSources: orderMaxSources, now: time.Now}

// orderValue is a source's order as the spool holds it: the last sequence
// staged and when (unix ns).
func orderValue(seq uint64, at int64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, seq)
	binary.BigEndian.PutUint64(b[8:], uint64(at))
	return b
}

// parseOrder reads orderValue's bytes, or the sequence alone of a spool
// written before the time was kept (the time is then loadedAt).
func parseOrder(v []byte, loadedAt int64) (seq uint64, at int64, ok bool) {
	switch len(v) {
	case 8:
		return binary.BigEndian.Uint64(v), loadedAt, true
	case 16:
		return binary.BigEndian.Uint64(v), int64(binary.BigEndian.Uint64(v[8:])), true
	}
	return 0, 0, false
}

// prune forgets the sources silent for forgetAfter, and past maxSources
// the longest silent, down to nine tenths of the bound (so that a flood
// of new sources does not sort at every batch). It runs at most every
// sixteenth of forgetAfter unless the bound is passed. With stateful
// stages, what it forgets is noted for the spool (st.forgot). Called with
// stageMu held; it returns how many sources it forgot.
func (st *stageState) prune(now int64) int {
	b := st.bounds
	if len(st.last) <= b.maxSources && now < st.pruneAt {
		return 0
	}
	st.pruneAt = now + int64(b.forgetAfter)/16
	n := 0
	forget := func(k string) {
		delete(st.last, k)
		delete(st.lastAt, k)
		if st.cp != nil {
			st.forgot = append(st.forgot, k)
		}
		n++
	}
	for k, at := range st.lastAt {
		if now-at >= int64(b.forgetAfter) {
			forget(k)
		}
	}
	if len(st.last) > b.maxSources {
		keys := make([]string, 0, len(st.last))
		for k := range st.last {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(x, y string) int { return cmp.Or(cmp.Compare(st.lastAt[x], st.lastAt[y]), cmp.Compare(x, y)) })
		for _, k := range keys[:len(keys)-max(b.maxSources-b.maxSources/10, 1)] {
			forget(k)
		}
	}
	return n
}
