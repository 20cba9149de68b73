package stage

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/meterkit/meter"
)

// Meters is a compiled list of meter-name patterns, with the semantics of
// the `meters:` list of a Ceilometer pipeline source:
//
//   - "cpu.util" names one meter; "disk.*" and "*.bytes" use the wildcard
//     "*" (any run of characters, dots included) and "?" (any one
//     character), as Python's fnmatch; "*" alone is every meter.
//   - "!disk.*" excludes. Exclusions are checked first: a name that matches
//     one is never selected.
//   - A list of exclusions only selects every name it does not exclude.
//     Otherwise a name is selected when it matches an inclusion and no
//     exclusion ("disk.*", "!disk.*.latency": the disk meters but latency).
//     Ceilometer refuses names mixed with exclusions or with "*" as
//     redundant; here they mean what they say.
//
// The zero Meters (and a nil *Meters) selects every meter. Match does not
// allocate. In a configuration, Meters is a JSON list of strings, compiled
// when decoded:
//
//	Meters stage.Meters `json:"meters,omitempty"`
type Meters struct {
	patterns []string // as given
	include  []pattern
	exclude  []pattern
	included bool // has inclusions; without, every name not excluded is selected
}

type pattern struct {
	glob   string // the pattern, without its '!'
	prefix string // the part before the first wildcard
	suffix string // the part after the last wildcard
	kind   uint8
}

const (
	isExact  uint8 = iota // no wildcard
	isAll                 // "*"
	isPrefix              // "abc*"
	isSuffix              // "*abc"
	isGlob                // anything else
)

// CompileMeters compiles patterns. An empty pattern, a lone "!", or a
// character class ("[", which fnmatch would read as one and this package
// does not support) is an error naming the pattern.
func CompileMeters(patterns ...string) (Meters, error) {
	m := Meters{patterns: append([]string(nil), patterns...)}
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		g := strings.TrimPrefix(p, "!")
		switch {
		case g == "":
			return Meters{}, fmt.Errorf("stage: meters: empty pattern %q", p)
		case strings.ContainsAny(g, "[]"):
			return Meters{}, fmt.Errorf("stage: meters: pattern %q: character classes ([...]) are not supported; use * and ?", p)
		}
		pt := pattern{glob: g}
		first, last := strings.IndexAny(g, "*?"), strings.LastIndexAny(g, "*?")
		switch {
		case first < 0:
			pt.kind = isExact
		case strings.Trim(g, "*") == "":
			pt.kind = isAll
		case first == len(g)-1 && g[first] == '*':
			pt.kind, pt.prefix = isPrefix, g[:first]
		case last == 0 && g[0] == '*' && !strings.ContainsAny(g[1:], "*?"):
			pt.kind, pt.suffix = isSuffix, g[1:]
		default:
			pt.kind, pt.prefix, pt.suffix = isGlob, g[:first], g[last+1:]
		}
		if neg {
			m.exclude = append(m.exclude, pt)
		} else {
			m.include = append(m.include, pt)
			m.included = true
		}
	}
	return m, nil
}

// MustCompileMeters is CompileMeters that panics on a bad pattern, for
// patterns written in the program.
func MustCompileMeters(patterns ...string) Meters {
	m, err := CompileMeters(patterns...)
	if err != nil {
		panic(err)
	}
	return m
}

// Match reports whether the list selects the meter name.
func (m *Meters) Match(name string) bool {
	if m == nil {
		return true
	}
	for i := range m.exclude {
		if m.exclude[i].match(name) {
			return false
		}
	}
	if !m.included {
		return true
	}
	for i := range m.include {
		if m.include[i].match(name) {
			return true
		}
	}
	return false
}

// IsZero reports whether m selects every name because it has no patterns.
func (m Meters) IsZero() bool { return len(m.patterns) == 0 }

// Patterns returns the patterns m was compiled from.
func (m Meters) Patterns() []string { return append([]string(nil), m.patterns...) }

// String returns the patterns, comma-separated.
func (m Meters) String() string { return strings.Join(m.patterns, ",") }

// UnmarshalJSON compiles a JSON list of patterns.
func (m *Meters) UnmarshalJSON(b []byte) error {
	var ps []string
	if err := json.Unmarshal(b, &ps); err != nil {
		return fmt.Errorf("stage: meters: want a list of patterns like [\"cpu.*\", \"!cpu.time\"], got %s", b)
	}
	c, err := CompileMeters(ps...)
	if err != nil {
		return err
	}
	*m = c
	return nil
}

// MarshalJSON writes the patterns as a JSON list.
func (m Meters) MarshalJSON() ([]byte, error) {
	if m.patterns == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(m.patterns)
}

func (p *pattern) match(name string) bool {
	switch p.kind {
	case isExact:
		return name == p.glob
	case isAll:
		return true
	case isPrefix:
		return strings.HasPrefix(name, p.prefix)
	case isSuffix:
		return strings.HasSuffix(name, p.suffix)
	}
	if len(name) < len(p.prefix)+len(p.suffix) || !strings.HasPrefix(name, p.prefix) || !strings.HasSuffix(name, p.suffix) {
		return false
	}
	return glob(p.glob, name)
}

// glob matches name against a pattern of literal bytes, '*' and '?', without
// allocating: the classic backtracking over the last star.
func glob(pat, name string) bool {
	px, nx := 0, 0
	starPx, starNx := -1, 0
	for px < len(pat) || nx < len(name) {
		if px < len(pat) {
			switch c := pat[px]; c {
			case '*':
				starPx, starNx = px, nx
				px++
				continue
			case '?':
				if nx < len(name) {
					_, size := utf8.DecodeRuneInString(name[nx:])
					px++
					nx += size
					continue
				}
			default:
				if nx < len(name) && name[nx] == c {
					px++
					nx++
					continue
				}
			}
		}
		if starPx >= 0 && starNx < len(name) {
			_, size := utf8.DecodeRuneInString(name[starNx:])
			starNx += size
			px, nx = starPx+1, starNx
			continue
		}
		return false
	}
	return true
}

// Only limits s to the meters m selects: s is given, as one batch, the
// measurements whose name m matches, in their order, and the others are
// appended after its output unchanged. Built-in stages take a `meters`
// setting instead, which keeps the batch's order; Only is for stages that
// have none. Only is a [Wrapper].
func Only(m Meters, s Stage) Stage {
	if s == nil {
		panic("stage: Only: nil stage")
	}
	if m.IsZero() {
		return s
	}
	return &only{m: m, s: s}
}

type only struct {
	m         Meters
	s         Stage
	sel, rest []meter.Measurement
}

func (o *only) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	o.sel, o.rest = o.sel[:0], o.rest[:0]
	for i := range in {
		if o.m.Match(in[i].Name) {
			o.sel = append(o.sel, in[i])
		} else {
			o.rest = append(o.rest, in[i])
		}
	}
	var err error
	if len(o.sel) > 0 {
		out, err = o.s.Process(ctx, o.sel, out)
	}
	out = append(out, o.rest...)
	clear(o.sel)
	clear(o.rest)
	return out, err
}

func (o *only) Unwrap() Stage { return o.s }
