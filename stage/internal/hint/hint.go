// Package hint remembers what a stage decided about the meter names it saw
// lately, so that it matches each name against its meter patterns once
// rather than once a measurement: a few dozen names recur in every batch,
// often at the same positions.
//
// An entry is used only when the name is the same string: equal strings
// compare in a few nanoseconds, at once when they share their bytes (a
// driver's constant names), where matching patterns takes tens. It holds
// the names it remembers (and so keeps them in memory) until others take
// their place.
package hint

import "unsafe"

// size is the number of entries: a power of two, well above the number of
// meter names a host or a fleet sends, so that two rarely share an entry.
const size = 512

// Matches is a cache of a yes-or-no per meter name. It looks first at what
// it was told for the same position in the last batch (batches of one
// driver or one agent have the same shape, and a name there compares at
// once when it is a driver's constant), then in a table direct-mapped by a
// cheap hash of the name (its length and four of its bytes: a collision
// only costs a match). The zero value is ready; it is not safe for
// concurrent use (a stage is never called concurrently).
type Matches struct {
	pos []entry      // by position in the batch
	at  *[size]entry // by name; made on the first Put
}

type entry struct {
	name string
	ok   bool
}

func index(name string) int {
	n := len(name)
	return (n*7 ^ int(name[0])*31 ^ int(name[n-1])*131 ^ int(name[n/2])*17 ^ int(name[n-2])*5) & (size - 1)
}

// Get returns what was put for name, at position i of its batch or
// elsewhere, and whether it is there. The empty name is never found.
func (h *Matches) Get(i int, name string) (ok, found bool) {
	_, ok, found = h.Lookup(i, name)
	return ok, found
}

// Lookup is Get that also returns, when found, the name as it was put: the
// same bytes as name or others equal to them. A stage that works in place
// sets a measurement's name to it, so that the stages after it, whose hints
// hold that string too, compare it at once rather than byte by byte (the
// names of a decoded batch are fresh strings).
func (h *Matches) Lookup(i int, name string) (same string, ok, found bool) {
	if i < len(h.pos) {
		if e := &h.pos[i]; Same(e.name, name) && name != "" {
			return e.name, e.ok, true
		}
	}
	if h.at == nil || len(name) < 2 {
		return "", false, false
	}
	e := &h.at[index(name)]
	if !Same(e.name, name) {
		return "", false, false
	}
	h.setPos(i, *e)
	return e.name, e.ok, true
}

// At is Get for a name in the same bytes as the one put at position i
// (a driver's constant, or the name a stage before gave from its own
// hint): small enough to be inlined in a stage's loop, which calls Get or
// Lookup when it is not found.
func (h *Matches) At(i int, name string) (ok, found bool) {
	if i < len(h.pos) && Identical(h.pos[i].name, name) && name != "" {
		return h.pos[i].ok, true
	}
	return false, false
}

// Put records ok for name, at position i of its batch.
func (h *Matches) Put(i int, name string, ok bool) {
	h.setPos(i, entry{name, ok})
	if len(name) < 2 {
		return
	}
	if h.at == nil {
		h.at = new([size]entry)
	}
	h.at[index(name)] = entry{name, ok}
}

func (h *Matches) setPos(i int, e entry) {
	for len(h.pos) <= i {
		h.pos = append(h.pos, entry{})
	}
	h.pos[i] = e
}

// Same reports whether a and b are equal, without a call when they share
// their bytes (the strings of a driver's constants, or of a series held).
func Same(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

// Identical reports whether a and b are the same bytes, and so equal; they
// may be equal without.
func Identical(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}
