// Package arithmetic is the "arithmetic" stage: a new meter computed from
// several meters of the same resource in the same batch, written as
// Ceilometer's arithmetic transformer writes it:
//
//	# in a -stages file:
//	- type: arithmetic
//	  expr: "$(memory.used) / $(memory.total) * 100"
//	  as: memory.usage.percent
//	  unit: "%"
//
// Each $(name) is the value of meter name. The expression is compiled once,
// when the stage is made, by github.com/expr-lang/expr (numbers, + - * / %
// **, parentheses, comparisons and the conditional ?:, and its built-in
// functions such as min, max, abs, ceil and floor); a bad expression is an
// error that names it and the column of the mistake.
//
// Measurements are grouped by Host, ResourceID, ProjectID and UserID. For
// each group that has every meter the expression names (the latest of each,
// by time, when one appears more than once), the stage appends one
// measurement right after the group's last input:
//
//	| field  | arithmetic                                                    |
//	|--------|---------------------------------------------------------------|
//	| name   | `as` (required)                                               |
//	| kind   | `kind`: gauge (default), cumulative or delta                  |
//	| unit   | `unit` (none by default)                                      |
//	| value  | the value of the expression; ±Inf or NaN (x / 0) is           |
//	|        | dropped, counted as dropped                                   |
//	| time   | the latest time of its inputs                                 |
//	| ids    | Host, ResourceID, ProjectID, UserID of the group              |
//	| labels | those of the input named first in the expression (the slice)  |
//	| inputs | kept, unchanged; with `drop_inputs: true`, the inputs of an   |
//	|        | output made are dropped (counted as filtered), while those of |
//	|        | a group missing a meter are kept                              |
//
// A group missing one of the meters makes no output, counted as missing.
// The stage holds no state between batches, so it runs in the agent (on one
// collection) or in the publisher (on one agent's batch); give the meters
// the same collection, or a batch that holds them together.
package arithmetic

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

func init() { stage.Register("arithmetic", Open) }

// Config is the stage's settings.
type Config struct {
	// Expr is the expression, with $(meter) for each input; required.
	Expr string `json:"expr"`
	// As is the name of the meter made; required.
	As string `json:"as"`
	// Unit of the meter made; none when empty.
	Unit string `json:"unit,omitempty"`
	// Kind of the meter made: gauge (the default), cumulative or delta.
	Kind string `json:"kind,omitempty"`
	// DropInputs drops the inputs of each measurement made.
	DropInputs bool `json:"drop_inputs,omitempty"`
}

// Arithmetic is the stage.
type Arithmetic struct {
	stage.Counters
	src     string
	as      string
	unit    string
	kind    meter.Kind
	drop    bool
	vars    []string // meter names, in order of first appearance in Expr
	program *vm.Program
	vm      vm.VM
	env     map[string]any
	names   []string // "v0", "v1", ...

	groups  []group
	byKey   map[groupKey]int
	ofInput []int32 // per input: its group, or -1
}

type groupKey struct{ host, resource, project, user string }

type group struct {
	key  groupKey
	vals []float64
	at   []int // index in the batch of the input of each variable, -1 when missing
	last int   // index of the group's last input
	out  int8  // 0 not computed, 1 made, -1 none
}

// New makes the stage.
func New(c Config) (*Arithmetic, error) {
	if c.As == "" {
		return nil, errors.New("arithmetic: as: required (the name of the meter made)")
	}
	if len(c.As) > meter.MaxNameLen || len(c.Unit) > meter.MaxUnitLen {
		return nil, errors.New("arithmetic: as or unit over the limits of meter.Validate")
	}
	a := &Arithmetic{src: c.Expr, as: c.As, unit: c.Unit, kind: meter.Gauge, drop: c.DropInputs, byKey: map[groupKey]int{}}
	if c.Kind != "" {
		k, err := meter.ParseKind(c.Kind)
		if err != nil {
			return nil, fmt.Errorf("arithmetic: kind: %w", err)
		}
		a.kind = k
	}
	rewritten, vars, err := rewrite(c.Expr)
	if err != nil {
		return nil, fmt.Errorf("arithmetic: expression %q: %w", c.Expr, err)
	}
	if len(vars) == 0 {
		return nil, fmt.Errorf("arithmetic: expression %q names no meter: write $(meter.name) for each input", c.Expr)
	}
	a.vars = vars
	a.env = make(map[string]any, len(vars))
	for i := range vars {
		n := "v" + strconv.Itoa(i)
		a.names = append(a.names, n)
		a.env[n] = 0.0
	}
	a.program, err = expr.Compile(rewritten, expr.Env(a.env), expr.AsFloat64())
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("arithmetic: expression %q: column %d: %s", c.Expr, fe.Column+1, fe.Message)
		}
		return nil, fmt.Errorf("arithmetic: expression %q: %w", c.Expr, err)
	}
	return a, nil
}

// rewrite replaces each $(name) with a variable padded with spaces to the
// same number of characters, so that the positions in expr's errors are
// those of the expression as written.
func rewrite(src string) (string, []string, error) {
	var b strings.Builder
	var vars []string
	col := 0 // characters of src before i
	for i := 0; i < len(src); {
		if !strings.HasPrefix(src[i:], "$(") {
			_, size := utf8.DecodeRuneInString(src[i:])
			b.WriteString(src[i : i+size])
			i += size
			col++
			continue
		}
		end := strings.IndexByte(src[i:], ')')
		if end < 0 {
			return "", nil, fmt.Errorf("column %d: $( without its )", col+1)
		}
		name := src[i+2 : i+end]
		if strings.TrimSpace(name) == "" || strings.ContainsAny(name, "$( ") {
			return "", nil, fmt.Errorf("column %d: $(%s) is not a meter name", col+1, name)
		}
		v := -1
		for j, n := range vars {
			if n == name {
				v = j
			}
		}
		if v < 0 {
			v = len(vars)
			vars = append(vars, name)
		}
		id := "v" + strconv.Itoa(v)
		width := utf8.RuneCountInString(src[i : i+end+1])
		if width < len(id) { // width >= 4: only from the 100th meter on
			return "", nil, fmt.Errorf("column %d: too many meters", col+1)
		}
		b.WriteString(id)
		b.WriteString(strings.Repeat(" ", width-len(id)))
		i += end + 1
		col += width
	}
	return b.String(), vars, nil
}

// Open makes the stage from its settings, for the registry.
func Open(cfg meter.Config) (stage.Stage, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("arithmetic: %w", err)
	}
	return New(c)
}

// Process appends the batch with, after each group's last input, the meter
// computed from the group.
func (a *Arithmetic) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return out, err
	}
	n := len(out)
	a.groups = a.groups[:0]
	clear(a.byKey)
	if cap(a.ofInput) < len(in) {
		a.ofInput = make([]int32, len(in))
	}
	ofInput := a.ofInput[:len(in)]
	for i := range in {
		m := &in[i]
		ofInput[i] = -1
		v := a.varOf(m.Name)
		if v < 0 {
			continue
		}
		k := groupKey{m.Host, m.ResourceID, m.ProjectID, m.UserID}
		g, ok := a.byKey[k]
		if !ok {
			g = a.newGroup(k)
			a.byKey[k] = g
		}
		gr := &a.groups[g]
		if prev := gr.at[v]; prev < 0 || !in[prev].Time.After(m.Time) {
			gr.at[v], gr.vals[v] = i, m.Value
		}
		gr.last = i
		ofInput[i] = int32(g)
	}
	var missing, dropped, filtered uint64
	for i := range a.groups {
		g := &a.groups[i]
		g.out = 1
		for _, at := range g.at {
			if at < 0 {
				g.out = -1
				missing++
				break
			}
		}
	}
	for i := range in {
		g := ofInput[i]
		if g < 0 {
			out = append(out, in[i])
			continue
		}
		gr := &a.groups[g]
		if !(a.drop && gr.out == 1) {
			out = append(out, in[i])
		} else {
			filtered++
		}
		if gr.last != i || gr.out != 1 {
			continue
		}
		m, ok, err := a.compute(in, gr)
		if err != nil {
			return out[:n], err
		}
		if !ok {
			dropped++
			continue
		}
		out = append(out, m)
	}
	a.Count(stage.Stats{In: uint64(len(in)), Out: uint64(len(out) - n), Missing: missing, Dropped: dropped, Filtered: filtered})
	return out, nil
}

func (a *Arithmetic) varOf(name string) int {
	for i, v := range a.vars {
		if v == name {
			return i
		}
	}
	return -1
}

func (a *Arithmetic) newGroup(k groupKey) int {
	if len(a.groups) < cap(a.groups) {
		a.groups = a.groups[:len(a.groups)+1]
	} else {
		a.groups = append(a.groups, group{vals: make([]float64, len(a.vars)), at: make([]int, len(a.vars))})
	}
	g := &a.groups[len(a.groups)-1]
	if len(g.at) != len(a.vars) { // one of the zero groups append grew the slice by
		g.vals, g.at = make([]float64, len(a.vars)), make([]int, len(a.vars))
	}
	g.key = k
	for i := range g.at {
		g.at[i] = -1
	}
	return len(a.groups) - 1
}

// compute evaluates the expression on a complete group. ok is false when
// the value is not finite.
func (a *Arithmetic) compute(in []meter.Measurement, g *group) (meter.Measurement, bool, error) {
	for i, n := range a.names {
		a.env[n] = g.vals[i]
	}
	r, err := a.vm.Run(a.program, a.env)
	if err != nil {
		return meter.Measurement{}, false, nil // a run-time error (an integer division by zero): no value
	}
	v, isFloat := r.(float64)
	if !isFloat {
		return meter.Measurement{}, false, fmt.Errorf("arithmetic: expression %q gave %T, not a number", a.src, r)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return meter.Measurement{}, false, nil
	}
	first := &in[g.at[0]]
	t := first.Time
	for _, at := range g.at[1:] {
		if in[at].Time.After(t) {
			t = in[at].Time
		}
	}
	return meter.Measurement{Name: a.as, Kind: a.kind, Unit: a.unit, Value: v, Time: t,
		Host: g.key.host, ResourceID: g.key.resource, ProjectID: g.key.project, UserID: g.key.user, Labels: first.Labels}, true, nil
}
