// Package unit is the "unit" stage: it scales values into another unit
// (B -> MiB, ns -> s, °C -> °F with a factor and an offset) and renames
// meters.
//
//	# in a -stages file:
//	- type: unit
//	  meters: ["memory.*"]
//	  from: B          # only measurements in bytes (leave out to take any unit)
//	  to: MiB          # the factor (1/1048576) is known; give `factor` for others
//	- type: unit
//	  meters: ["thermal.*"]
//	  from: Cel
//	  to: degF
//	  factor: 1.8
//	  offset: 32
//	- type: unit
//	  rename: {"cpu_util": "cpu.util"}
//
// What it does to the measurements its `meters` select (all when not set)
// whose unit is `from` (any when not set), but for meterkit's own
// (meterkit.*, such as meterkit.state.change); the others pass unchanged:
//
//	| field  | unit                                                          |
//	|--------|---------------------------------------------------------------|
//	| name   | renamed when `rename` names it, unchanged otherwise           |
//	| kind   | unchanged                                                     |
//	| unit   | `to` (unchanged when `to` is not set)                         |
//	| value  | value × factor + offset; a Delta gets value × factor only (an |
//	|        | offset does not apply to a difference)                        |
//	| labels | unchanged (the same slice)                                    |
//	| others | a value that becomes ±Inf is dropped, counted as dropped      |
//
// The known factors convert between B, kB, MB, GB, TB, PB, KiB, MiB, GiB,
// TiB, PiB; bit, kbit, Mbit, Gbit and the byte units; ns, us (µs), ms, s,
// min, h, d; and rates of these with the same denominator ("B/s" to
// "MiB/s"). It works in place (a stage.InPlacer: in a chain, it changes the
// measurements where they are rather than copy them), keeps the order of
// the batch, holds no state and runs in the agent or the publisher. It
// remembers which names it selected lately, so that a name seen before
// costs a string comparison.
package unit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/internal/hint"
)

func init() { stage.Register("unit", Open) }

// Config is the stage's settings.
type Config struct {
	// Meters limits the stage to these meters; all when empty.
	Meters stage.Meters `json:"meters,omitempty"`
	// From limits the stage to measurements in this unit; any unit when
	// empty. With To and no Factor, it picks the known factor.
	From string `json:"from,omitempty"`
	// To is the new unit; the unit stays when empty.
	To string `json:"to,omitempty"`
	// Factor multiplies the value; from From and To when not set.
	Factor *float64 `json:"factor,omitempty"`
	// Offset is added after the factor (not to Delta measurements).
	Offset float64 `json:"offset,omitempty"`
	// Rename maps meter names to new names.
	Rename map[string]string `json:"rename,omitempty"`
}

// Unit is the stage.
type Unit struct {
	stage.Counters
	meters         stage.Meters
	from, to       string
	convert        bool
	factor, offset float64
	rename         map[string]string
	hint           hint.Matches // meters.Match and not meterkit's own, by name
	fromSeen       string       // the last unit found equal to from: its bytes compare at once
}

// New makes the stage.
func New(c Config) (*Unit, error) {
	u := &Unit{meters: c.Meters, from: c.From, fromSeen: c.From, to: c.To, offset: c.Offset, factor: 1, rename: c.Rename}
	if len(c.To) > meter.MaxUnitLen {
		return nil, fmt.Errorf("unit: to: %q is over the limit of %d bytes", c.To, meter.MaxUnitLen)
	}
	switch {
	case c.Factor != nil:
		if math.IsNaN(*c.Factor) || math.IsInf(*c.Factor, 0) || *c.Factor == 0 {
			return nil, fmt.Errorf("unit: factor: %v; want a finite number other than 0", *c.Factor)
		}
		u.factor, u.convert = *c.Factor, true
	case c.To != "" && c.From == "":
		return nil, fmt.Errorf("unit: to %q without from: give from (the unit converted) or factor", c.To)
	case c.To != "":
		f, ok := Factor(c.From, c.To)
		if !ok {
			return nil, fmt.Errorf("unit: no known factor from %q to %q; give factor (and offset)", c.From, c.To)
		}
		u.factor, u.convert = f, true
	}
	if math.IsNaN(c.Offset) || math.IsInf(c.Offset, 0) {
		return nil, fmt.Errorf("unit: offset: %v; want a finite number", c.Offset)
	}
	if c.Offset != 0 {
		u.convert = true
	}
	for from, to := range c.Rename {
		if to == "" || len(to) > meter.MaxNameLen {
			return nil, fmt.Errorf("unit: rename %q: new name %q is empty or over %d bytes", from, to, meter.MaxNameLen)
		}
	}
	if !u.convert && c.To == "" && len(c.Rename) == 0 {
		return nil, errors.New("unit: nothing to do: give to (with from or factor), factor, offset or rename")
	}
	return u, nil
}

// Open makes the stage from its settings, for the registry.
func Open(cfg meter.Config) (stage.Stage, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("unit: %w", err)
	}
	return New(c)
}

// Process appends each measurement, converted when selected.
func (u *Unit) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	n := len(out)
	dropped := 0
	for i := range in {
		m := &in[i]
		sel, found := u.hint.At(i, m.Name) // inlined: a name in the bytes held
		if !found {
			sel = u.named(i, m.Name)
		}
		if !sel || u.from != "" && !u.isFrom(m.Unit) {
			out = append(out, *m)
			continue
		}
		out = append(out, *m)
		if !u.convert1(&out[len(out)-1]) {
			out = out[:len(out)-1]
			dropped++
		}
	}
	u.Count(stage.Stats{In: uint64(len(in)), Out: uint64(len(out) - n), Dropped: uint64(dropped)})
	return out, nil
}

// ProcessInPlace converts the selected measurements of ms where they are.
func (u *Unit) ProcessInPlace(_ context.Context, ms []meter.Measurement) ([]meter.Measurement, error) {
	k := 0
	for i := range ms {
		m := &ms[i]
		sel, found := u.hint.At(i, m.Name) // inlined: a name in the bytes held
		if !found {
			sel = u.named(i, m.Name)
		}
		if sel && (u.from == "" || u.isFrom(m.Unit)) && !u.convert1(m) {
			continue // dropped
		}
		if k != i {
			ms[k] = *m
		}
		k++
	}
	clear(ms[k:])
	u.Count(stage.Stats{In: uint64(len(ms)), Out: uint64(k), Dropped: uint64(len(ms) - k)})
	return ms[:k], nil
}

// A measurement is the stage's when named says so of its name and its unit
// is from (isFrom). The name goes first: after a stage that set it to the
// string its hint holds (select), it compares at once, where the unit
// (fresh bytes in a decoded batch) takes a call.

// named reports whether the stage's meters select name, at position i of
// its batch, and it is not meterkit's own.
func (u *Unit) named(i int, name string) bool {
	ok, found := u.hint.Get(i, name)
	if !found {
		ok = u.meters.Match(name) && !strings.HasPrefix(name, meter.ReservedPrefix)
		u.hint.Put(i, name, ok)
	}
	return ok
}

// isFrom reports whether unit is from: at once when it is the string found
// equal last time (a driver's constant).
func (u *Unit) isFrom(unit string) bool {
	if hint.Identical(unit, u.fromSeen) {
		return true
	}
	if unit != u.from {
		return false
	}
	u.fromSeen = unit
	return true
}

// convert1 converts m, and reports false for a value out of range, which
// is dropped. Small enough to be inlined in the stage's loops.
func (u *Unit) convert1(m *meter.Measurement) bool {
	if u.convert {
		v := m.Value * u.factor
		if m.Kind != meter.Delta {
			v += u.offset
		}
		if v-v != 0 { // ±Inf or NaN
			return false
		}
		m.Value = v
	}
	if u.to != "" {
		m.Unit = u.to
	}
	if u.rename != nil {
		u.rename1(m)
	}
	return true
}

// rename1 renames m when rename names it.
func (u *Unit) rename1(m *meter.Measurement) {
	if to, ok := u.rename[m.Name]; ok {
		m.Name = to
	}
}

// scales holds the known units, each with its size in a base unit of its
// dimension.
var scales = map[string]struct {
	dim  byte
	size float64
}{
	"B": {'B', 1}, "kB": {'B', 1e3}, "MB": {'B', 1e6}, "GB": {'B', 1e9}, "TB": {'B', 1e12}, "PB": {'B', 1e15},
	"KiB": {'B', 1 << 10}, "MiB": {'B', 1 << 20}, "GiB": {'B', 1 << 30}, "TiB": {'B', 1 << 40}, "PiB": {'B', 1 << 50},
	"bit": {'B', 1.0 / 8}, "kbit": {'B', 1e3 / 8}, "Mbit": {'B', 1e6 / 8}, "Gbit": {'B', 1e9 / 8},
	"ns": {'s', 1e-9}, "us": {'s', 1e-6}, "µs": {'s', 1e-6}, "ms": {'s', 1e-3}, "s": {'s', 1},
	"min": {'s', 60}, "h": {'s', 3600}, "d": {'s', 86400},
}

// Factor returns the factor that converts a value in unit from into unit to,
// for the units the package knows (see the package doc), and whether it
// knows it.
func Factor(from, to string) (float64, bool) {
	fn, fd, _ := strings.Cut(from, "/")
	tn, td, _ := strings.Cut(to, "/")
	if fd != td {
		return 0, false
	}
	a, okA := scales[fn]
	b, okB := scales[tn]
	if !okA || !okB || a.dim != b.dim {
		return 0, false
	}
	return a.size / b.size, true
}
