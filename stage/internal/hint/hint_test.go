package hint

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestMatchesRemembersByPositionAndName(t *testing.T) {
	var h Matches
	if _, found := h.Get(0, "cpu.util"); found {
		t.Fatal("found in an empty cache")
	}
	h.Put(0, "cpu.util", true)
	h.Put(1, "cpu.time", false)
	for _, c := range []struct {
		i        int
		name     string
		ok, find bool
	}{
		{0, "cpu.util", true, true},
		{0, strings.Clone("cpu.util"), true, true}, // the same name in other bytes
		{1, "cpu.time", false, true},
		{5, "cpu.util", true, true}, // elsewhere in the batch
		{1, "memory.used", false, false},
		{2, "", false, false},
	} {
		ok, found := h.Get(c.i, c.name)
		if ok != c.ok || found != c.find {
			t.Errorf("Get(%d, %q) = %v, %v; want %v, %v", c.i, c.name, ok, found, c.ok, c.find)
		}
	}
	// Many names: each one found is found with its own answer.
	for i := range 5000 {
		h.Put(i%100, "m"+strconv.Itoa(i), i%2 == 0)
	}
	hits := 0
	for i := range 5000 {
		if ok, found := h.Get(i%100, "m"+strconv.Itoa(i)); found {
			hits++
			if ok != (i%2 == 0) {
				t.Fatalf("m%d: %v, the answer of another name", i, ok)
			}
		}
	}
	if hits == 0 || hits > size+100 {
		t.Fatalf("%d of 5000 names found, with %d entries and 100 positions", hits, size)
	}
	if allocs := testing.AllocsPerRun(100, func() { h.Put(3, "x", true); h.Get(3, "x") }); allocs != 0 {
		t.Fatalf("%v allocations once made", allocs)
	}
}

func TestSame(t *testing.T) {
	a := "cpu.util"
	for _, c := range []struct {
		a, b string
		want bool
	}{{a, a, true}, {a, strings.Clone(a), true}, {a, "cpu.time", false}, {a, "cpu", false}, {"", "", true}, {"", "x", false}} {
		if got := Same(c.a, c.b); got != c.want {
			t.Errorf("Same(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

// TestSameEveryLength compares strings of every length up to 40 that differ
// in one byte, each byte in turn, in other bytes than their twin's.
func TestSameEveryLength(t *testing.T) {
	for n := range 41 {
		a := strings.Repeat("x", n)
		if !Same(a, strings.Clone(a)) {
			t.Fatalf("%d bytes: equal strings not the same", n)
		}
		for i := range n {
			b := []byte(a)
			b[i] = 'y'
			if Same(a, string(b)) || Same(string(b), a) {
				t.Fatalf("%d bytes, byte %d differs: the same", n, i)
			}
		}
	}
}

func TestLookupReturnsTheNamePut(t *testing.T) {
	var h Matches
	put := strings.Clone("disk.read.bytes")
	h.Put(3, put, true)
	for _, i := range []int{3, 7} { // by position, then by name
		same, ok, found := h.Lookup(i, strings.Clone(put))
		if !found || !ok || same != put || unsafe.StringData(same) != unsafe.StringData(put) {
			t.Fatalf("Lookup(%d) = %q (own bytes: %v), %v, %v; want the string put, true, true",
				i, same, unsafe.StringData(same) == unsafe.StringData(put), ok, found)
		}
	}
	if same, _, found := h.Lookup(3, "disk.read.bytez"); found || same != "" {
		t.Fatalf("another name found: %q", same)
	}
}
