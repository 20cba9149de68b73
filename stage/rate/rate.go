// Package rate is the "rate" stage: a cumulative counter turned into a
// per-second gauge, Ceilometer's rate_of_change transformer. The classic use
// is cpu_util over libvirt's cumulative cpu (nanoseconds of CPU time):
//
//	# in the agent's -stages file:
//	- type: rate
//	  meters: ["cpu"]
//	  as: cpu_util
//	  percent_of: vcpus   # a label of cpu: the share of the vCPUs, in %
//	- type: rate
//	  meters: ["network.*.bytes", "disk.*.bytes"]
//	  as: $(name).rate   # network.incoming.bytes.rate, ..., in B/s
//
// For each cumulative measurement its `meters` select (required), but for
// meterkit's own (meterkit.*), the stage appends, right after it, a new
// measurement whose value is the series' increase since its previous point,
// per second of measurement time:
//
//	| field  | rate                                                          |
//	|--------|---------------------------------------------------------------|
//	| name   | `as` (required: no default, so that it cannot collide with a  |
//	|        | driver's names); $(name) in it stands for the input's name    |
//	| kind   | gauge                                                         |
//	| unit   | the input's unit + "/s" ("B" -> "B/s", "ns" -> "ns/s", none   |
//	|        | -> "/s"); with `percent_of`: "%"                              |
//	| value  | (v - v') / (t - t') in input units per second; with           |
//	|        | `percent_of`: that rate in the input's base unit per second   |
//	|        | x 100 / N (see below)                                         |
//	| time   | the input's                                                   |
//	| ids    | the input's Host, ResourceID, ProjectID, UserID               |
//	| labels | the input's (the same slice)                                  |
//	| input  | kept, unchanged, before the rate; with `drop_input: true`,    |
//	|        | every input the stage keeps a series for is removed (counted  |
//	|        | as filtered), whether or not it made a rate this time         |
//
// No rate is made (and the point is otherwise used as below) when:
//
//   - it is the first point of its series (nothing to compare with): it
//     becomes the series' last point;
//   - its value is below the previous one: a reset (the source restarted),
//     counted in Stats.Resets; it becomes the last point, and the next
//     point gives a rate against it;
//   - it is more than `max_gap` after the previous point (when max_gap is
//     set; by default any gap is bridged, the rate being then the average
//     over the gap): it becomes the last point;
//   - it is not later than the previous point (a duplicate, or out of
//     order): it is ignored and counted as dropped;
//   - with `percent_of` a label, the measurement lacks that label (counted
//     as missing), or its value is not a number above 0 (counted as
//     dropped): it still becomes the last point.
//
// Measurements of other kinds, and those not selected, pass unchanged.
//
// When `meters` selects more than one meter, write $(name) in `as`: the
// rates of two meters of one resource under one fixed name would be one
// series to the store, their points colliding.
//
// # Percent
//
// `percent_of` is a label name (the label's value, a number, is N for each
// measurement) or a number N. The value is then the rate in the input's
// base unit per second, x 100 / N. Time units are brought to seconds first:
// ns is divided by 1e9, us (or µs) by 1e6, ms by 1e3, s is taken as it is,
// so that cpu in ns, growing 1e9 per second with one vCPU busy all the time,
// reads 100 with vcpus=1, and 50 with vcpus=2. Any other unit is its own
// base unit: network bytes as a percent of a link of N bytes per second
// (percent_of: 125000000 for 1 Gbit/s) read (B/s) x 100 / N.
//
// The label percent_of names is not part of the series' identity: a guest
// given another vCPU keeps its series, and the next rate is a share of the
// new count.
//
// # State and memory
//
// The last point of each series is state, kept in memory and given out and
// back with Checkpoint and Restore (a stage.Checkpointer), so that an agent
// restarted from its spool makes its first rates against the last points
// that reached the spool. The stage needs each series whole and in order:
// it runs in the agent, which sees each of its series that way.
//
// Memory is bounded: at most max_series series (default 100000; beyond, the
// measurements of new series pass unstaged, with no rate, and are counted
// as dropped), and a series not seen for forget_after (default 1h, by
// measurement time) is forgotten, so that its next point is a first point.
package rate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/internal/series"
)

func init() { stage.Register("rate", Open) }

// nameVar in `as` stands for the input's name.
const nameVar = "$(name)"

// Defaults of the memory bounds.
const (
	DefaultMaxSeries   = 100000
	DefaultForgetAfter = time.Hour
)

// Config is the stage's settings.
type Config struct {
	// Meters are the cumulative meters turned into rates; required.
	Meters stage.Meters `json:"meters"`
	// As is the name of the rate made; required.
	As string `json:"as"`
	// PercentOf makes the rate a percentage of N: a label name, whose
	// value is N, or a number; none when zero.
	PercentOf PercentOf `json:"percent_of,omitzero"`
	// MaxGap is the longest time between two points of a series that still
	// gives a rate; no limit when 0.
	MaxGap meter.Duration `json:"max_gap,omitempty"`
	// DropInput removes the inputs, leaving the rates only.
	DropInput bool `json:"drop_input,omitempty"`
	// MaxSeries bounds the series held; DefaultMaxSeries when 0.
	MaxSeries int `json:"max_series,omitempty"`
	// ForgetAfter is how long, by measurement time, a series may go unseen
	// before it is forgotten; DefaultForgetAfter when 0.
	ForgetAfter meter.Duration `json:"forget_after,omitempty"`
}

// PercentOf is what a rate is a percentage of: a label whose value is N
// (Label), or a number N. In a configuration it is a string (the label) or
// a number.
type PercentOf struct {
	Label string
	N     float64
}

// IsZero reports whether p asks for no percentage.
func (p PercentOf) IsZero() bool { return p.Label == "" && p.N == 0 }

// UnmarshalJSON reads a label name or a number.
func (p *PercentOf) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case string:
		*p = PercentOf{Label: v}
	case float64:
		*p = PercentOf{N: v}
	default:
		return fmt.Errorf("percent_of: want a label name such as \"vcpus\" or a number such as 4, got %s", b)
	}
	return nil
}

// MarshalJSON writes the label name or the number.
func (p PercentOf) MarshalJSON() ([]byte, error) {
	if p.Label != "" {
		return json.Marshal(p.Label)
	}
	return json.Marshal(p.N)
}

// Rate is the stage.
type Rate struct {
	stage.Counters
	meters  stage.Meters
	as      string
	pre     string // with $(name): as = pre + "$(name)" + suf
	suf     string
	templ   bool
	label   string  // percent_of a label
	n       float64 // percent_of a number
	percent bool
	maxGap  int64 // ns; 0 none
	drop    bool
	tab     *series.Table[cache]
}

// cache is what rate keeps of a series beside its last point, never
// checkpointed: the name made for it, the unit last seen and the one made
// from it, the percent_of label's value last seen and what it parsed to.
type cache struct {
	OutName       string
	Unit, OutUnit string
	Raw           string
	N             float64
}

// New makes the stage.
func New(c Config) (*Rate, error) {
	if c.Meters.IsZero() {
		return nil, errors.New("rate: meters: required (a list of patterns such as [\"cpu\"])")
	}
	switch {
	case c.As == "":
		return nil, errors.New("rate: as: required (the name of the rate made, such as cpu_util)")
	case len(c.As) > meter.MaxNameLen:
		return nil, fmt.Errorf("rate: as: %d bytes, over the limit of %d", len(c.As), meter.MaxNameLen)
	case strings.HasPrefix(c.As, meter.ReservedPrefix):
		return nil, fmt.Errorf("rate: as: %q; names starting %q are meterkit's own", c.As, meter.ReservedPrefix)
	}
	pre, suf, templ := strings.Cut(c.As, nameVar)
	if templ && strings.Contains(suf, nameVar) {
		return nil, fmt.Errorf("rate: as: %q; write $(name) once at most", c.As)
	}
	r := &Rate{pre: pre, suf: suf, templ: templ, meters: c.Meters, as: c.As, label: c.PercentOf.Label, n: c.PercentOf.N, percent: !c.PercentOf.IsZero(),
		maxGap: int64(c.MaxGap), drop: c.DropInput}
	if c.PercentOf.Label == "" && c.PercentOf.N != 0 && !(c.PercentOf.N > 0 && !math.IsInf(c.PercentOf.N, 0)) {
		return nil, fmt.Errorf("rate: percent_of: %v; want a label name or a finite number above 0", c.PercentOf.N)
	}
	if c.MaxGap < 0 {
		return nil, fmt.Errorf("rate: max_gap: %v; want 0 (no limit) or more", time.Duration(c.MaxGap))
	}
	maxSeries, forget := c.MaxSeries, time.Duration(c.ForgetAfter)
	switch {
	case maxSeries < 0:
		return nil, fmt.Errorf("rate: max_series: %d; want 0 (the default, %d) or more", maxSeries, DefaultMaxSeries)
	case maxSeries == 0:
		maxSeries = DefaultMaxSeries
	}
	switch {
	case forget < 0:
		return nil, fmt.Errorf("rate: forget_after: %v; want 0 (the default, %v) or more", forget, DefaultForgetAfter)
	case forget == 0:
		forget = DefaultForgetAfter
	}
	r.tab = series.New[cache](r.label, maxSeries, forget)
	return r, nil
}

// Open makes the stage from its settings, for the registry.
func Open(cfg meter.Config) (stage.Stage, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("rate: %w", err)
	}
	return New(c)
}

// Process appends each input, then its rate when one is made.
func (r *Rate) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return out, err
	}
	n := len(out)
	var dropped, filtered, missing, resets uint64
	r.tab.Begin(len(in))
	for i := range in {
		m := &in[i]
		if m.Kind != meter.Cumulative || !r.meters.Match(m.Name) || strings.HasPrefix(m.Name, meter.ReservedPrefix) {
			out = append(out, *m)
			r.tab.Skip(i)
			continue
		}
		s, dt, dv, step := r.tab.Advance(i, m)
		if step == series.Unbounded {
			out = append(out, *m)
			dropped++
			continue
		}
		if r.drop {
			filtered++
		} else {
			out = append(out, *m)
		}
		switch step {
		case series.First:
			continue
		case series.Backward:
			dropped++
			continue
		case series.Reset:
			resets++
			continue
		}
		if r.maxGap > 0 && dt > r.maxGap {
			continue
		}
		val := dv / (float64(dt) / 1e9)
		unit := ""
		if r.percent {
			nn := r.n
			if r.label != "" {
				raw, ok := m.Label(r.label)
				if !ok {
					missing++
					continue
				}
				if raw != s.P.Raw || s.P.N == 0 {
					s.P.Raw, s.P.N = raw, 0
					if f, err := strconv.ParseFloat(raw, 64); err == nil && f > 0 && !math.IsInf(f, 0) {
						s.P.N = f
					}
				}
				if nn = s.P.N; nn == 0 {
					dropped++
					continue
				}
			}
			val = val / perSecond(m.Unit) * 100 / nn
			unit = "%"
		} else {
			if s.P.OutUnit == "" || s.P.Unit != m.Unit {
				s.P.Unit, s.P.OutUnit = m.Unit, m.Unit+"/s"
			}
			unit = s.P.OutUnit
		}
		name := r.as
		if r.templ {
			if s.P.OutName == "" {
				s.P.OutName = r.pre + m.Name + r.suf
			}
			name = s.P.OutName
		}
		if math.IsNaN(val) || math.IsInf(val, 0) || len(name) > meter.MaxNameLen {
			dropped++
			continue
		}
		out = append(out, meter.Measurement{Name: name, Kind: meter.Gauge, Unit: unit, Value: val, Time: m.Time,
			Host: m.Host, ResourceID: m.ResourceID, ProjectID: m.ProjectID, UserID: m.UserID, Labels: m.Labels})
	}
	r.tab.End()
	r.Count(stage.Stats{In: uint64(len(in)), Out: uint64(len(out) - n), Dropped: dropped, Filtered: filtered,
		Missing: missing, Resets: resets})
	r.SetSeries(r.tab.Len())
	return out, nil
}

// perSecond returns how many of a time unit make a second, and 1 for any
// other unit (its own base unit).
func perSecond(unit string) float64 {
	switch unit {
	case "ns":
		return 1e9
	case "us", "µs":
		return 1e6
	case "ms":
		return 1e3
	}
	return 1
}

// Checkpoint returns the last point of every series held, as JSON.
func (r *Rate) Checkpoint() ([]byte, error) {
	b, err := r.tab.Checkpoint()
	if err != nil {
		return nil, fmt.Errorf("rate: checkpoint: %w", err)
	}
	return b, nil
}

// Restore replaces the series held with those of a checkpoint.
func (r *Rate) Restore(b []byte) error {
	if err := r.tab.Restore(b); err != nil {
		return fmt.Errorf("rate: restore: %w", err)
	}
	r.SetSeries(r.tab.Len())
	return nil
}
