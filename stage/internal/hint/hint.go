// Package hint remembers, position by position, what a stage decided about
// the names of the last batch, so that a stage given batches of the same
// shape (one driver's collections, one agent's batches) matches each name
// against its meter patterns once rather than once a batch.
//
// A position's entry is used only when the name there is the same string as
// last time: equal strings compare in a few nanoseconds, at once when they
// share their bytes (a driver's constant names), where matching patterns
// takes tens. It holds the names of the last batch until the next one.
package hint

import "unsafe"

// Matches is a cache of one yes-or-no per position. The zero value is
// ready; it is not safe for concurrent use (a stage is never called
// concurrently).
type Matches struct {
	at []entry
}

type entry struct {
	name string
	ok   bool
}

// Get returns what was put at position i, and whether it is there: false
// when position i held another name. The empty name is never found.
func (h *Matches) Get(i int, name string) (ok, found bool) {
	if i < len(h.at) && Same(h.at[i].name, name) && name != "" {
		return h.at[i].ok, true
	}
	return false, false
}

// Put records ok for name at position i.
func (h *Matches) Put(i int, name string, ok bool) {
	for len(h.at) <= i {
		h.at = append(h.at, entry{})
	}
	h.at[i] = entry{name, ok}
}

// Same reports whether a and b are equal, without a call when they share
// their bytes (the strings of a driver's constants, or of a series held).
func Same(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}
