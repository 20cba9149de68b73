// Package aggregate is the "aggregate" stage: measurements grouped by the
// fields chosen, over windows of fixed length aligned to that length by
// measurement time, summed up once per window as sum, mean, min, max, last
// and count. Billing per project and hour, or a fleet's mean load per
// minute:
//
//	# in a -stages file:
//	- type: aggregate
//	  meters: ["network.outgoing.bytes.delta"]
//	  group_by: [project]
//	  window: 1h
//	  functions: [sum]
//	  as: $(name).hourly           # network.outgoing.bytes.delta.hourly
//	- type: aggregate
//	  meters: ["cpu.util"]
//	  group_by: [host]
//	  window: 1m
//	  lateness: 30s
//	  functions: [mean, max]       # cpu.util.mean, cpu.util.max
//
// A group is a meter name and the values of the fields in `group_by`: host,
// resource, project, user, and label:<key> for a label (a measurement
// without that label is in the group of those without it). Windows start
// at multiples of `window` (required) since the Unix epoch, in UTC: a 1h
// window runs from one hour to the next. For each window of each group the
// stage emits, once, one measurement per function of `functions` (sum,
// mean, min, max, last and count, all six in that order by default):
//
//	| field  | aggregate                                                     |
//	|--------|---------------------------------------------------------------|
//	| name   | `as` with $(name) the meter's name and $(fn) the function's   |
//	|        | ("$(name).$(fn)" by default: cpu.util.mean)                   |
//	| kind   | sum of deltas: delta; last of cumulatives: cumulative;        |
//	|        | otherwise gauge                                               |
//	| unit   | the unit of the window's first point; count: none             |
//	| value  | sum, mean, min, max, last (the value of the latest point by   |
//	|        | time) or count of the window's points                         |
//	| time   | the window's start                                            |
//	| ids    | Host, ResourceID, ProjectID, UserID when in group_by, else    |
//	|        | empty                                                         |
//	| labels | the group_by labels the group has, in group_by's order, then  |
//	|        | the `labels` given (such as the publisher's id)               |
//	| input  | kept, unchanged; with `drop_input: true`, every measurement   |
//	|        | the meters select is removed (counted as filtered)            |
//
// Outputs are appended after the batch's inputs, window by window in order
// of start, then group by group in order of their fields, then in the order
// of `functions`.
//
// # Closing windows
//
// A window is final, emitted and forgotten, once the clock is past its end
// plus `lateness` (two windows by default): the clock is the latest
// measurement time seen by Process, or the time given to Tick (the
// composer's clock), whichever is later. A point for a window already
// final is late: counted in Stats.Late and left out, never revising what
// was emitted. (One host whose clock runs ahead moves the clock for all:
// keep clocks in step, or give lateness room.) Open windows are state: at
// shutdown they are checkpointed, not emitted, and a restored stage goes on
// filling them.
//
// The stage needs no order: it works by measurement time, in the agent (on
// one host's series) or in the publisher (across hosts). In the publisher,
// the outputs carry the publisher's id (stage.Origin.Publisher, the
// publisher's WithID) as label `publisher`, after the others (unless
// `labels` sets that key itself), so that partial windows from two
// publishers (after a failover) stay distinct series instead of colliding
// in a store that keeps the first point of a timestamp (Gnocchi); then add
// them up across publishers in the store, or give each group of agents one
// publisher.
//
// # Memory
//
// At most max_series windows are open at once (default 100000, each a
// group's window); a point that would open one more is left out of the
// aggregates and counted as dropped. A window is forgotten once final (see
// above), whether or not its group goes on, so an idle group is held for
// one window plus `lateness` at most: the stage needs no forget_after
// setting (the name the per-series stages give theirs).
package aggregate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

func init() { stage.Register("aggregate", Open) }

// DefaultMaxSeries bounds the windows open at once.
const DefaultMaxSeries = 100000

// functions are the functions the stage computes, in their default order.
var functions = []string{"sum", "mean", "min", "max", "last", "count"}

const (
	fnSum = iota
	fnMean
	fnMin
	fnMax
	fnLast
	fnCount
)

// Config is the stage's settings.
type Config struct {
	// Meters are the meters aggregated; required.
	Meters stage.Meters `json:"meters"`
	// GroupBy are the fields grouped by, besides the meter's name: host,
	// resource, project, user, label:<key>. None: one group per meter.
	GroupBy []string `json:"group_by,omitempty"`
	// Window is the windows' length; required.
	Window meter.Duration `json:"window"`
	// Lateness is how long after its end a window waits for late points;
	// two windows when nil.
	Lateness *meter.Duration `json:"lateness,omitempty"`
	// Functions are what is emitted per window: sum, mean, min, max, last,
	// count; all of them, in that order, when empty.
	Functions []string `json:"functions,omitempty"`
	// As is the name of each output, with $(name) and $(fn); "$(name).$(fn)"
	// when empty. With more than one function it must hold $(fn).
	As string `json:"as,omitempty"`
	// Labels are added to every output.
	Labels map[string]string `json:"labels,omitempty"`
	// DropInput removes the measurements aggregated, leaving the aggregates.
	DropInput bool `json:"drop_input,omitempty"`
	// MaxSeries bounds the windows open at once; DefaultMaxSeries when 0.
	MaxSeries int `json:"max_series,omitempty"`
}

// Fields of a group.
const (
	byHost = 1 << iota
	byResource
	byProject
	byUser
)

// Aggregate is the stage.
type Aggregate struct {
	stage.Counters
	meters    stage.Meters
	by        int      // byHost | ...
	keys      []string // label keys grouped by
	window    int64
	lateness  int64
	fns       []int
	as        string
	extra     []meter.Label
	pub       *meter.Label // the publisher's id, learnt from the Origin (learn); nil in the agent
	drop      bool
	maxSeries int

	seed    maphash.Seed
	h       maphash.Hash
	windows map[uint64]*window
	count   int
	clock   int64 // unix ns: the latest time seen
	final   []*window
}

// window is one group's window.
type window struct {
	start                               int64
	name, host, resource, project, user string
	labels                              []meter.Label // group_by labels present, in group_by's order
	unit                                string
	kind                                meter.Kind
	n                                   int64
	sum, min, max, last                 float64
	lastT                               int64
	next                                *window
}

// New makes the stage.
func New(c Config) (*Aggregate, error) {
	if c.Meters.IsZero() {
		return nil, errors.New("aggregate: meters: required (a list of patterns such as [\"cpu.util\"])")
	}
	if c.Window <= 0 {
		return nil, errors.New("aggregate: window: required (a duration above 0, such as \"1m\" or \"1h\")")
	}
	a := &Aggregate{meters: c.Meters, window: int64(c.Window), lateness: 2 * int64(c.Window), as: c.As, drop: c.DropInput,
		maxSeries: c.MaxSeries, seed: maphash.MakeSeed(), windows: map[uint64]*window{}}
	if c.Lateness != nil {
		if *c.Lateness < 0 {
			return nil, fmt.Errorf("aggregate: lateness: %v; want 0 or more", time.Duration(*c.Lateness))
		}
		a.lateness = int64(*c.Lateness)
	}
	seen := map[string]bool{}
	for _, f := range c.GroupBy {
		if seen[f] {
			return nil, fmt.Errorf("aggregate: group_by: %q twice", f)
		}
		seen[f] = true
		switch f {
		case "host":
			a.by |= byHost
		case "resource":
			a.by |= byResource
		case "project":
			a.by |= byProject
		case "user":
			a.by |= byUser
		default:
			k, ok := strings.CutPrefix(f, "label:")
			if !ok || k == "" {
				return nil, fmt.Errorf("aggregate: group_by: %q; want host, resource, project, user or label:<key>", f)
			}
			a.keys = append(a.keys, k)
		}
	}
	fns := c.Functions
	if len(fns) == 0 {
		fns = functions
	}
	for _, f := range fns {
		i := slices.Index(functions, f)
		if i < 0 {
			return nil, fmt.Errorf("aggregate: functions: %q; want some of %s", f, strings.Join(functions, ", "))
		}
		if slices.Contains(a.fns, i) {
			return nil, fmt.Errorf("aggregate: functions: %q twice", f)
		}
		a.fns = append(a.fns, i)
	}
	if a.as == "" {
		a.as = "$(name).$(fn)"
	}
	if len(a.fns) > 1 && !strings.Contains(a.as, "$(fn)") {
		return nil, fmt.Errorf("aggregate: as: %q; with several functions, write $(fn) in it, or their outputs collide", a.as)
	}
	if strings.HasPrefix(a.as, meter.ReservedPrefix) {
		return nil, fmt.Errorf("aggregate: as: %q; names starting %q are meterkit's own", a.as, meter.ReservedPrefix)
	}
	for k, v := range c.Labels {
		if k == "" || slices.Contains(a.keys, k) {
			return nil, fmt.Errorf("aggregate: labels: key %q is empty or grouped by", k)
		}
		a.extra = append(a.extra, meter.Label{Key: k, Value: v})
	}
	slices.SortFunc(a.extra, func(x, y meter.Label) int { return cmp.Compare(x.Key, y.Key) })
	if len(a.keys)+len(a.extra) > meter.MaxLabels {
		return nil, fmt.Errorf("aggregate: %d labels grouped by or added, over the limit of %d", len(a.keys)+len(a.extra), meter.MaxLabels)
	}
	switch {
	case c.MaxSeries < 0:
		return nil, fmt.Errorf("aggregate: max_series: %d; want 0 (the default, %d) or more", c.MaxSeries, DefaultMaxSeries)
	case c.MaxSeries == 0:
		a.maxSeries = DefaultMaxSeries
	}
	return a, nil
}

// Open makes the stage from its settings, for the registry.
func Open(cfg meter.Config) (stage.Stage, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	return New(c)
}

// Process adds the selected measurements to their windows, passes the
// inputs on, then appends the windows made final by the latest time seen.
func (a *Aggregate) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return out, err
	}
	a.learn(ctx)
	n := len(out)
	var dropped, filtered, late uint64
	for i := range in {
		m := &in[i]
		if !a.meters.Match(m.Name) || strings.HasPrefix(m.Name, meter.ReservedPrefix) {
			out = append(out, *m)
			continue
		}
		if a.drop {
			filtered++
		} else {
			out = append(out, *m)
		}
		t := m.Time.UnixNano()
		start := t - mod(t, a.window)
		if a.isFinal(start) {
			late++
			continue
		}
		a.clock = max(a.clock, t)
		w := a.lookup(m, start)
		if w == nil {
			dropped++
			continue
		}
		w.add(m.Value, t)
	}
	out = a.emit(out)
	a.Count(stage.Stats{In: uint64(len(in)), Out: uint64(len(out) - n), Dropped: dropped, Filtered: filtered, Late: late})
	a.SetSeries(a.count)
	return out, nil
}

// Tick appends the windows made final by now.
func (a *Aggregate) Tick(ctx context.Context, now time.Time, out []meter.Measurement) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return out, err
	}
	a.learn(ctx)
	n := len(out)
	a.clock = max(a.clock, now.UnixNano())
	out = a.emit(out)
	a.Count(stage.Stats{Out: uint64(len(out) - n)})
	a.SetSeries(a.count)
	return out, nil
}

// PublisherLabel is the label giving the id of the publisher that made an
// aggregate (see Origin.Publisher in package stage).
const PublisherLabel = "publisher"

// learn takes the publisher's id from ctx, once: it labels the outputs.
func (a *Aggregate) learn(ctx context.Context) {
	if a.pub != nil {
		return
	}
	o, ok := stage.OriginFrom(ctx)
	if !ok || o.Publisher == "" || len(a.keys)+len(a.extra) >= meter.MaxLabels ||
		slices.ContainsFunc(a.extra, func(l meter.Label) bool { return l.Key == PublisherLabel }) {
		return
	}
	a.pub = &meter.Label{Key: PublisherLabel, Value: o.Publisher}
}

// isFinal reports whether the window starting at start is past its end
// plus the lateness.
func (a *Aggregate) isFinal(start int64) bool { return start+a.window+a.lateness <= a.clock }

func mod(t, w int64) int64 {
	r := t % w
	if r < 0 {
		r += w
	}
	return r
}

func (w *window) add(v float64, t int64) {
	if w.n == 0 {
		w.min, w.max = v, v
	}
	w.n++
	w.sum += v
	w.min = min(w.min, v)
	w.max = max(w.max, v)
	if w.n == 1 || t >= w.lastT {
		w.last, w.lastT = v, t
	}
}

// emit appends the final windows, in a stable order, and forgets them.
func (a *Aggregate) emit(out []meter.Measurement) []meter.Measurement {
	a.final = a.final[:0]
	for k, first := range a.windows {
		var keep *window
		for w := first; w != nil; {
			next := w.next
			if a.isFinal(w.start) {
				a.final = append(a.final, w)
				a.count--
			} else {
				w.next, keep = keep, w
			}
			w = next
		}
		if keep == nil {
			delete(a.windows, k)
		} else {
			a.windows[k] = keep
		}
	}
	slices.SortFunc(a.final, compareWindows)
	for _, w := range a.final {
		out = a.outputs(w, out)
	}
	clear(a.final)
	return out
}

func compareWindows(x, y *window) int {
	if c := cmp.Or(cmp.Compare(x.start, y.start), cmp.Compare(x.name, y.name), cmp.Compare(x.host, y.host),
		cmp.Compare(x.resource, y.resource), cmp.Compare(x.project, y.project), cmp.Compare(x.user, y.user)); c != 0 {
		return c
	}
	return slices.CompareFunc(x.labels, y.labels, func(p, q meter.Label) int {
		return cmp.Or(cmp.Compare(p.Key, q.Key), cmp.Compare(p.Value, q.Value))
	})
}

// outputs appends w's measurements, one per function.
func (a *Aggregate) outputs(w *window, out []meter.Measurement) []meter.Measurement {
	var labels []meter.Label
	if n := len(w.labels) + len(a.extra); n > 0 || a.pub != nil {
		labels = make([]meter.Label, 0, n+1)
		labels = append(append(labels, w.labels...), a.extra...)
		if a.pub != nil {
			labels = append(labels, *a.pub)
		}
	}
	at := time.Unix(0, w.start).UTC()
	for _, f := range a.fns {
		m := meter.Measurement{Name: a.name(w.name, f), Kind: meter.Gauge, Unit: w.unit, Time: at,
			Host: w.host, ResourceID: w.resource, ProjectID: w.project, UserID: w.user, Labels: labels}
		switch f {
		case fnSum:
			m.Value = w.sum
			if w.kind == meter.Delta {
				m.Kind = meter.Delta
			}
		case fnMean:
			m.Value = w.sum / float64(w.n)
		case fnMin:
			m.Value = w.min
		case fnMax:
			m.Value = w.max
		case fnLast:
			m.Value = w.last
			if w.kind == meter.Cumulative {
				m.Kind = meter.Cumulative
			}
		case fnCount:
			m.Value, m.Unit = float64(w.n), ""
		}
		if len(m.Name) > meter.MaxNameLen || math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			continue // a sum past the float range, a name past the limit: nothing valid to emit
		}
		out = append(out, m)
	}
	return out
}

func (a *Aggregate) name(meterName string, fn int) string {
	s := strings.ReplaceAll(a.as, "$(name)", meterName)
	return strings.ReplaceAll(s, "$(fn)", functions[fn])
}

// group returns the fields of m's group.
func (a *Aggregate) group(m *meter.Measurement) (host, resource, project, user string) {
	if a.by&byHost != 0 {
		host = m.Host
	}
	if a.by&byResource != 0 {
		resource = m.ResourceID
	}
	if a.by&byProject != 0 {
		project = m.ProjectID
	}
	if a.by&byUser != 0 {
		user = m.UserID
	}
	return
}

func (a *Aggregate) hash(name, host, resource, project, user string, start int64, m *meter.Measurement) uint64 {
	h := &a.h
	h.SetSeed(a.seed)
	for _, s := range [...]string{name, host, resource, project, user} {
		h.WriteString(s)
		h.WriteByte(0)
	}
	for _, k := range a.keys {
		if v, ok := m.Label(k); ok {
			h.WriteString(k)
			h.WriteByte(0)
			h.WriteString(v)
			h.WriteByte(0)
		}
	}
	var b [8]byte
	for i := range b {
		b[i] = byte(start >> (8 * i))
	}
	h.Write(b[:])
	return h.Sum64()
}

func (a *Aggregate) is(w *window, start int64, name, host, resource, project, user string, m *meter.Measurement) bool {
	if w.start != start || w.name != name || w.host != host || w.resource != resource || w.project != project || w.user != user {
		return false
	}
	j := 0
	for _, k := range a.keys {
		v, ok := m.Label(k)
		if !ok {
			continue
		}
		if j >= len(w.labels) || w.labels[j].Key != k || w.labels[j].Value != v {
			return false
		}
		j++
	}
	return j == len(w.labels)
}

// lookup finds m's window starting at start, or opens it; nil past the
// bound.
func (a *Aggregate) lookup(m *meter.Measurement, start int64) *window {
	host, resource, project, user := a.group(m)
	k := a.hash(m.Name, host, resource, project, user, start, m)
	first := a.windows[k]
	for w := first; w != nil; w = w.next {
		if a.is(w, start, m.Name, host, resource, project, user, m) {
			return w
		}
	}
	if a.count >= a.maxSeries {
		return nil
	}
	w := &window{start: start, name: m.Name, host: host, resource: resource, project: project, user: user,
		unit: m.Unit, kind: m.Kind, next: first}
	for _, key := range a.keys {
		if v, ok := m.Label(key); ok {
			w.labels = append(w.labels, meter.Label{Key: key, Value: v})
		}
	}
	a.windows[k] = w
	a.count++
	return w
}

// state is the checkpoint's form: the open windows sorted, for the same
// state to give the same bytes.
type state struct {
	Version int           `json:"version"`
	Clock   int64         `json:"clock"`
	Windows []windowState `json:"windows"`
}

type windowState struct {
	Start    int64         `json:"start"`
	Name     string        `json:"name"`
	Host     string        `json:"host,omitempty"`
	Resource string        `json:"resource,omitempty"`
	Project  string        `json:"project,omitempty"`
	User     string        `json:"user,omitempty"`
	Labels   []meter.Label `json:"labels,omitempty"`
	Unit     string        `json:"unit,omitempty"`
	Kind     meter.Kind    `json:"kind"`
	N        int64         `json:"n"`
	Sum      float64       `json:"sum"`
	Min      float64       `json:"min"`
	Max      float64       `json:"max"`
	Last     float64       `json:"last"`
	LastT    int64         `json:"last_t"`
}

// Checkpoint returns the open windows and the clock, as JSON.
func (a *Aggregate) Checkpoint() ([]byte, error) {
	ws := make([]*window, 0, a.count)
	for _, first := range a.windows {
		for w := first; w != nil; w = w.next {
			ws = append(ws, w)
		}
	}
	slices.SortFunc(ws, compareWindows)
	st := state{Version: 1, Clock: a.clock, Windows: make([]windowState, 0, len(ws))}
	for _, w := range ws {
		st.Windows = append(st.Windows, windowState{w.start, w.name, w.host, w.resource, w.project, w.user, w.labels,
			w.unit, w.kind, w.n, w.sum, w.min, w.max, w.last, w.lastT})
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("aggregate: checkpoint: %w", err)
	}
	return b, nil
}

// Restore replaces the open windows and the clock with those of a
// checkpoint.
func (a *Aggregate) Restore(b []byte) error {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("aggregate: restore: %w", err)
	}
	if st.Version != 1 {
		return fmt.Errorf("aggregate: restore: state version %d; this stage reads version 1", st.Version)
	}
	fresh := &Aggregate{keys: a.keys, by: a.by, seed: a.seed, windows: make(map[uint64]*window, len(st.Windows)), maxSeries: math.MaxInt}
	for i, ws := range st.Windows {
		if ws.Name == "" || ws.N <= 0 || ws.Kind < meter.Gauge || ws.Kind > meter.Delta {
			return fmt.Errorf("aggregate: restore: window %d (%q): no name, no points or no kind", i, ws.Name)
		}
		if mod(ws.Start, a.window) != 0 {
			return fmt.Errorf("aggregate: restore: window %d (%q) starts at %d, not at a multiple of the window %v: state of another window length",
				i, ws.Name, ws.Start, time.Duration(a.window))
		}
		m := meter.Measurement{Name: ws.Name, Host: ws.Host, ResourceID: ws.Resource, ProjectID: ws.Project, UserID: ws.User, Labels: ws.Labels}
		before := fresh.count
		w := fresh.lookup(&m, ws.Start)
		if fresh.count == before {
			return fmt.Errorf("aggregate: restore: window %d (%q): given twice, or fields this stage does not group by", i, ws.Name)
		}
		w.unit, w.kind, w.n, w.sum, w.min, w.max, w.last, w.lastT = ws.Unit, ws.Kind, ws.N, ws.Sum, ws.Min, ws.Max, ws.Last, ws.LastT
	}
	a.windows, a.count, a.clock = fresh.windows, fresh.count, st.Clock
	a.SetSeries(a.count)
	return nil
}
