// Package delta is the "delta" stage: a cumulative counter turned into the
// change since its previous point, Ceilometer's delta transformer. The use
// is billing by usage per interval (bytes sent, CPU seconds) in a store
// that sums deltas:
//
//	# in the agent's -stages file:
//	- type: delta
//	  meters: ["network.outgoing.bytes"]
//	  as: network.outgoing.bytes.delta
//	- type: delta
//	  meters: ["disk.*.bytes"]
//	  as: $(name).delta   # disk.read.bytes.delta, disk.write.bytes.delta
//
// # Lost deltas are lost usage
//
// A delta dropped anywhere after this stage (by the agent's queue when it
// is full and drops the oldest batches, by a store that refuses a write)
// is usage lost for good: no later point brings it back. A dropped
// cumulative is recovered by the next value, which still holds everything
// counted so far. When billing depends on the numbers, ship the
// cumulatives (keep the input: `drop_input` is off by default) and take
// differences in the store, or at least keep both; use deltas where a
// lost interval is acceptable.
//
// For each cumulative measurement its `meters` select (required), but for
// meterkit's own (meterkit.*), the stage appends, right after it, the
// series' increase since its previous point:
//
//	| field  | delta                                                         |
//	|--------|---------------------------------------------------------------|
//	| name   | `as` (required: no default, so that it cannot collide with a  |
//	|        | driver's names); $(name) in it stands for the input's name    |
//	| kind   | delta                                                         |
//	| unit   | the input's                                                   |
//	| value  | v - v', the increase since the series' previous point         |
//	| time   | the input's (the end of the interval)                         |
//	| ids    | the input's Host, ResourceID, ProjectID, UserID               |
//	| labels | the input's (the same slice)                                  |
//	| input  | kept, unchanged, before the delta; with `drop_input: true`,   |
//	|        | every input the stage keeps a series for is removed (counted  |
//	|        | as filtered), whether or not it made a delta this time        |
//
// No delta is made when:
//
//   - it is the first point of its series: it becomes the series' last
//     point;
//   - its value is below the previous one: a reset (the source restarted),
//     counted in Stats.Resets; it becomes the last point. What was counted
//     between the previous point and the reset, and from the reset to this
//     point, is in no delta: that is the price of not guessing where the
//     counter started again;
//   - it is not later than the previous point (a duplicate, or out of
//     order): it is ignored and counted as dropped.
//
// Any gap between two points is bridged: the delta is then the usage over
// the whole gap, which is what a store summing deltas needs. Measurements of
// other kinds, and those not selected, pass unchanged. When `meters`
// selects more than one meter, write $(name) in `as`, or the deltas of two
// meters of one resource are one series to the store.
//
// # State and memory
//
// The last point of each series is state, kept in memory and given out and
// back with Checkpoint and Restore (a stage.Checkpointer), so that an agent
// restarted from its spool makes its first deltas against the last points
// that reached the spool, and counts no interval twice. The stage needs
// each series whole and in order: it runs in the agent.
//
// Memory is bounded: at most max_series series (default 100000; beyond, the
// measurements of new series pass unstaged, with no delta, and are counted
// as dropped), and a series not seen for forget_after (default 1h, by
// measurement time) is forgotten, so that its next point is a first point
// (the usage over that gap is in no delta: raise forget_after above the
// longest gap a series may have).
package delta

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/internal/series"
)

func init() { stage.Register("delta", Open) }

// nameVar in `as` stands for the input's name.
const nameVar = "$(name)"

// Defaults of the memory bounds.
const (
	DefaultMaxSeries   = 100000
	DefaultForgetAfter = time.Hour
)

// Config is the stage's settings.
type Config struct {
	// Meters are the cumulative meters turned into deltas; required.
	Meters stage.Meters `json:"meters"`
	// As is the name of the delta made; required.
	As string `json:"as"`
	// DropInput removes the inputs, leaving the deltas only.
	DropInput bool `json:"drop_input,omitempty"`
	// MaxSeries bounds the series held; DefaultMaxSeries when 0.
	MaxSeries int `json:"max_series,omitempty"`
	// ForgetAfter is how long, by measurement time, a series may go unseen
	// before it is forgotten; DefaultForgetAfter when 0.
	ForgetAfter meter.Duration `json:"forget_after,omitempty"`
}

// Delta is the stage.
type Delta struct {
	stage.Counters
	meters   stage.Meters
	as       string
	pre, suf string // with $(name): as = pre + "$(name)" + suf
	templ    bool
	drop     bool
	tab      *series.Table[cache]
}

// cache is what delta keeps of a series beside its last point, never
// checkpointed: the name made for it.
type cache struct{ OutName string }

// New makes the stage.
func New(c Config) (*Delta, error) {
	if c.Meters.IsZero() {
		return nil, errors.New("delta: meters: required (a list of patterns such as [\"network.outgoing.bytes\"])")
	}
	switch {
	case c.As == "":
		return nil, errors.New("delta: as: required (the name of the delta made, such as network.outgoing.bytes.delta)")
	case len(c.As) > meter.MaxNameLen:
		return nil, fmt.Errorf("delta: as: %d bytes, over the limit of %d", len(c.As), meter.MaxNameLen)
	case strings.HasPrefix(c.As, meter.ReservedPrefix):
		return nil, fmt.Errorf("delta: as: %q; names starting %q are meterkit's own", c.As, meter.ReservedPrefix)
	}
	pre, suf, templ := strings.Cut(c.As, nameVar)
	if templ && strings.Contains(suf, nameVar) {
		return nil, fmt.Errorf("delta: as: %q; write $(name) once at most", c.As)
	}
	maxSeries, forget := c.MaxSeries, time.Duration(c.ForgetAfter)
	switch {
	case maxSeries < 0:
		return nil, fmt.Errorf("delta: max_series: %d; want 0 (the default, %d) or more", maxSeries, DefaultMaxSeries)
	case maxSeries == 0:
		maxSeries = DefaultMaxSeries
	}
	switch {
	case forget < 0:
		return nil, fmt.Errorf("delta: forget_after: %v; want 0 (the default, %v) or more", forget, DefaultForgetAfter)
	case forget == 0:
		forget = DefaultForgetAfter
	}
	return &Delta{meters: c.Meters, as: c.As, pre: pre, suf: suf, templ: templ, drop: c.DropInput,
		tab: series.New[cache]("", maxSeries, forget)}, nil
}

// Open makes the stage from its settings, for the registry.
func Open(cfg meter.Config) (stage.Stage, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("delta: %w", err)
	}
	return New(c)
}

// Process appends each input, then its delta when one is made.
func (d *Delta) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return out, err
	}
	n := len(out)
	var dropped, filtered, resets uint64
	d.tab.Begin(len(in))
	for i := range in {
		m := &in[i]
		if m.Kind != meter.Cumulative || !d.meters.Match(m.Name) || strings.HasPrefix(m.Name, meter.ReservedPrefix) {
			out = append(out, *m)
			d.tab.Skip(i)
			continue
		}
		s, _, dv, step := d.tab.Advance(i, m)
		if step == series.Unbounded {
			out = append(out, *m)
			dropped++
			continue
		}
		if d.drop {
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
		name := d.as
		if d.templ {
			if s.P.OutName == "" {
				s.P.OutName = d.pre + m.Name + d.suf
			}
			name = s.P.OutName
		}
		if math.IsInf(dv, 0) || len(name) > meter.MaxNameLen {
			dropped++
			continue
		}
		out = append(out, meter.Measurement{Name: name, Kind: meter.Delta, Unit: m.Unit, Value: dv, Time: m.Time,
			Host: m.Host, ResourceID: m.ResourceID, ProjectID: m.ProjectID, UserID: m.UserID, Labels: m.Labels})
	}
	d.tab.End()
	d.Count(stage.Stats{In: uint64(len(in)), Out: uint64(len(out) - n), Dropped: dropped, Filtered: filtered, Resets: resets})
	d.SetSeries(d.tab.Len())
	return out, nil
}

// Checkpoint returns the last point of every series held, as JSON.
func (d *Delta) Checkpoint() ([]byte, error) {
	b, err := d.tab.Checkpoint()
	if err != nil {
		return nil, fmt.Errorf("delta: checkpoint: %w", err)
	}
	return b, nil
}

// Restore replaces the series held with those of a checkpoint.
func (d *Delta) Restore(b []byte) error {
	if err := d.tab.Restore(b); err != nil {
		return fmt.Errorf("delta: restore: %w", err)
	}
	d.SetSeries(d.tab.Len())
	return nil
}
