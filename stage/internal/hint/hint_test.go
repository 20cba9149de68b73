package hint

import (
	"strconv"
	"strings"
	"testing"
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
