package hint

import (
	"strings"
	"testing"
)

func TestMatchesRemembersByPositionAndName(t *testing.T) {
	var h Matches
	if _, found := h.Get(0, "cpu.util"); found {
		t.Fatal("found in an empty cache")
	}
	h.Put(2, "cpu.util", true)
	if ok, found := h.Get(2, "cpu.util"); !found || !ok {
		t.Fatalf("Get(2, cpu.util) = %v, %v; want true, true", ok, found)
	}
	// The same name in other bytes is the same name.
	if ok, found := h.Get(2, strings.Clone("cpu.util")); !found || !ok {
		t.Fatalf("Get(2, a copy of cpu.util) = %v, %v; want true, true", ok, found)
	}
	if _, found := h.Get(2, "cpu.time"); found {
		t.Fatal("found another name at position 2")
	}
	if _, found := h.Get(1, "cpu.util"); found {
		t.Fatal("found at position 1, never put")
	}
	if _, found := h.Get(1, ""); found {
		t.Fatal("found the empty name at position 1, never put")
	}
	h.Put(2, "cpu.time", false)
	if ok, found := h.Get(2, "cpu.time"); !found || ok {
		t.Fatalf("Get(2, cpu.time) = %v, %v; want false, true", ok, found)
	}
	if allocs := testing.AllocsPerRun(100, func() { h.Put(1, "x", true); h.Get(1, "x") }); allocs != 0 {
		t.Fatalf("%v allocations once grown", allocs)
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
