// Package levels is the "levels" stage: Opticon's warning, alert and
// critical thresholds per meter, above or below, with hysteresis. It labels
// each measurement it selects with its series' level, and reports each
// change of level as a measurement of its own.
//
//	# in a -stages file:
//	- type: levels
//	  meters: ["cpu.util", "memory.usage.percent"]
//	  warning: 80
//	  alert: 90
//	  critical: 95
//	  hysteresis: 5      # back to warning from alert below 85, not below 90
//	- type: levels
//	  meters: ["filesystem.free.percent"]
//	  direction: below   # the level rises as the value falls
//	  warning: 20
//	  critical: 5
//
// What it does to the measurements its `meters` select (required), but for
// meterkit's own (meterkit.*, such as the changes an earlier levels stage
// reported); the others pass unchanged:
//
//	| field  | levels                                                        |
//	|--------|---------------------------------------------------------------|
//	| name   | unchanged                                                     |
//	| kind   | unchanged                                                     |
//	| unit   | unchanged                                                     |
//	| value  | unchanged                                                     |
//	| labels | meterkit.state (meter.StateLabel) set to the series' level:   |
//	|        | ok, warning, alert or critical (replacing one already there)  |
//	| new    | on a change of level, right after the measurement that made   |
//	|        | it: meterkit.state.change (meter.StateChange), a Gauge with   |
//	|        | no unit whose value is the new level (0 ok, 1 warning,        |
//	|        | 2 alert, 3 critical), the Host, ResourceID, ProjectID, UserID |
//	|        | and Time of that measurement, and labels meter (its name),    |
//	|        | from and to (level names)                                     |
//
// A series is a meter name, host, resource, project, user and labels (but
// meterkit.state). A new series starts at ok, so its first measurement
// reports a change only when it is past a threshold. The level rises as
// soon as a value reaches a threshold (value >= threshold, or <= when
// below), and falls back only when the value is past the threshold by more
// than the hysteresis (value < threshold - hysteresis).
//
// The levels are per-series state, kept in memory and given out and back
// with Checkpoint and Restore (a stage.Checkpointer), so that a restarted
// agent does not report again the changes it already reported. The stage
// needs each series in order: it runs in the agent, which sees each of its
// series whole and in order. It may run in the publisher, which stages one
// agent's batches in sequence order, with a caveat: after a failover to
// another publisher, that publisher starts from its own idea of the levels
// (the last checkpoint it holds, or ok), and may report a change twice or
// miss one. It says so as a stage.OrderSensitive: a batch that comes out
// of order (a sequence lower than the last one staged for its agent) skips
// it, and the publisher counts it.
//
// Memory is bounded: at most max_series series (default 100000; beyond, new
// series pass unlabelled and are counted as dropped), and a series not seen
// for forget_after (default 1h, by measurement time) is forgotten.
package levels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/internal/hint"
	"github.com/meterkit/meter/stage/internal/series"
)

func init() { stage.Register("levels", Open) }

// Defaults of the memory bounds.
const (
	DefaultMaxSeries   = 100000
	DefaultForgetAfter = time.Hour
)

// Config is the stage's settings.
type Config struct {
	// Meters are the meters checked; required.
	Meters stage.Meters `json:"meters"`
	// Direction is "above" (the default: high values are bad) or "below".
	Direction string `json:"direction,omitempty"`
	// Warning, Alert and Critical are the thresholds; at least one. Above,
	// those given increase from warning to critical; below, they decrease.
	Warning  *float64 `json:"warning,omitempty"`
	Alert    *float64 `json:"alert,omitempty"`
	Critical *float64 `json:"critical,omitempty"`
	// Hysteresis is how far past a threshold a value must go back before
	// the level falls; 0 by default.
	Hysteresis float64 `json:"hysteresis,omitempty"`
	// MaxSeries bounds the series held; DefaultMaxSeries when 0.
	MaxSeries int `json:"max_series,omitempty"`
	// ForgetAfter is how long, by measurement time, a series may go unseen
	// before it is forgotten; DefaultForgetAfter when 0.
	ForgetAfter meter.Duration `json:"forget_after,omitempty"`
}

// Levels is the stage.
type Levels struct {
	stage.Counters
	meters      stage.Meters
	sign        float64    // 1 above, -1 below
	thr         [4]float64 // thr[1..3] times sign; +Inf when not set
	lowest      float64    // the lowest of thr[1..3]
	hyst        float64
	maxSeries   int
	forgetAfter time.Duration

	// The series, without meterkit.state in their identity: V is the
	// level, T the time of the latest measurement, P the labels.
	tab  *series.Table[labelSets]
	sel  hint.Matches        // whether the stage selects a name
	rest []meter.Measurement // the rest of a batch while ProcessInPlace inserts a change
}

// labelSets are a series' labels with meterkit.state, per level, made once.
type labelSets [4][]meter.Label

type entry = series.Series[labelSets]

// New makes the stage.
func New(c Config) (*Levels, error) {
	if c.Meters.IsZero() {
		return nil, errors.New("levels: meters: required (a list of patterns such as [\"cpu.util\"])")
	}
	l := &Levels{meters: c.Meters, sign: 1, hyst: c.Hysteresis, maxSeries: c.MaxSeries, forgetAfter: time.Duration(c.ForgetAfter)}
	switch c.Direction {
	case "", "above":
	case "below":
		l.sign = -1
	default:
		return nil, fmt.Errorf("levels: direction: %q; want above or below", c.Direction)
	}
	if c.Warning == nil && c.Alert == nil && c.Critical == nil {
		return nil, errors.New("levels: give at least one threshold: warning, alert or critical")
	}
	prev, prevName := math.Inf(-1), ""
	for i, t := range []struct {
		name string
		v    *float64
	}{{"warning", c.Warning}, {"alert", c.Alert}, {"critical", c.Critical}} {
		l.thr[i+1] = math.Inf(1)
		if t.v == nil {
			continue
		}
		if math.IsNaN(*t.v) || math.IsInf(*t.v, 0) {
			return nil, fmt.Errorf("levels: %s: %v; want a finite number", t.name, *t.v)
		}
		v := l.sign * *t.v
		if v <= prev {
			word := "above"
			if l.sign < 0 {
				word = "below"
			}
			return nil, fmt.Errorf("levels: %s (%v) must be %s %s (%v)", t.name, *t.v, word, prevName, l.sign*prev)
		}
		l.thr[i+1], prev, prevName = v, v, t.name
	}
	l.lowest = min(l.thr[1], l.thr[2], l.thr[3])
	if c.Hysteresis < 0 || math.IsNaN(c.Hysteresis) || math.IsInf(c.Hysteresis, 0) {
		return nil, fmt.Errorf("levels: hysteresis: %v; want a finite number, 0 or more", c.Hysteresis)
	}
	switch {
	case c.MaxSeries < 0:
		return nil, fmt.Errorf("levels: max_series: %d; want 0 (the default, %d) or more", c.MaxSeries, DefaultMaxSeries)
	case c.MaxSeries == 0:
		l.maxSeries = DefaultMaxSeries
	}
	switch {
	case c.ForgetAfter < 0:
		return nil, fmt.Errorf("levels: forget_after: %v; want 0 (the default, %v) or more", time.Duration(c.ForgetAfter), DefaultForgetAfter)
	case c.ForgetAfter == 0:
		l.forgetAfter = DefaultForgetAfter
	}
	l.tab = series.New[labelSets](meter.StateLabel, l.maxSeries, l.forgetAfter)
	return l, nil
}

// Open makes the stage from its settings, for the registry.
func Open(cfg meter.Config) (stage.Stage, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("levels: %w", err)
	}
	return New(c)
}

// Process labels the selected measurements with their level and appends a
// state change after each one that changed it.
func (l *Levels) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return out, err
	}
	n := len(out)
	dropped := 0
	l.tab.Begin(len(in))
	for i := range in {
		out = l.append1(out, i, &in[i], &dropped)
	}
	l.end(len(in), len(out)-n, dropped)
	return out, nil
}

// ProcessInPlace labels the selected measurements of ms where they are, and
// inserts a state change after each one that changed its level.
func (l *Levels) ProcessInPlace(ctx context.Context, ms []meter.Measurement) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return ms[:0], err
	}
	in, dropped := len(ms), 0
	l.tab.Begin(in)
	for i := range ms {
		m := &ms[i]
		// seriesAt, step and labelsFor written out, so that the common
		// case (the series hinted, its labels made) makes one call.
		s := l.tab.Hinted(i, m) // only selected measurements have a hint
		if s == nil {
			if s = l.find(i, m, &dropped); s == nil {
				continue
			}
		}
		l.tab.Seen(s, m.Time.UnixNano())
		from := meter.Level(s.V)
		to := l.level(from, m.Value)
		s.V = float64(to)
		if m.Labels = s.P[to]; m.Labels == nil {
			m.Labels = labelsFor(s, to)
		}
		if to != from {
			// The change goes right after m: the rest of the batch moves
			// aside, and comes back after it (changes are rare).
			ch := change(m, from, to)
			l.rest = append(l.rest[:0], ms[i+1:]...)
			ms = append(ms[:i+1], ch)
			for j := range l.rest {
				ms = l.append1(ms, i+1+j, &l.rest[j], &dropped)
			}
			clear(l.rest)
			break
		}
	}
	l.end(in, len(ms), dropped)
	return ms, nil
}

// end sweeps when it is time, and counts a batch.
func (l *Levels) end(in, out, dropped int) {
	l.tab.End()
	l.Count(stage.Stats{In: uint64(in), Out: uint64(out), Dropped: uint64(dropped)})
	l.SetSeries(l.tab.Len())
}

// append1 appends m, at position i of its batch, labelled when selected,
// and its state change if it made one.
func (l *Levels) append1(out []meter.Measurement, i int, m *meter.Measurement, dropped *int) []meter.Measurement {
	s := l.seriesAt(i, m, dropped)
	out = append(out, *m)
	if s == nil {
		return out
	}
	from, to := l.step(s, m)
	out[len(out)-1].Labels = labelsFor(s, to)
	if to != from {
		out = append(out, change(m, from, to))
	}
	return out
}

// seriesAt returns the series of m, at position i of its batch, or nil
// when the stage does not select m or holds too many series (counted in
// dropped). The series at position i in the last batch is tried first.
func (l *Levels) seriesAt(i int, m *meter.Measurement, dropped *int) *entry {
	if s := l.tab.Hinted(i, m); s != nil {
		return s // only selected measurements have a hint
	}
	return l.find(i, m, dropped)
}

// find is seriesAt without the hint.
func (l *Levels) find(i int, m *meter.Measurement, dropped *int) *entry {
	ok, found := l.sel.Get(i, m.Name)
	if !found {
		ok = l.meters.Match(m.Name) && !strings.HasPrefix(m.Name, meter.ReservedPrefix)
		l.sel.Put(i, m.Name, ok)
	}
	if !ok {
		l.tab.Skip(i)
		return nil
	}
	s, _ := l.tab.Find(i, m) // a new series is at ok, V 0
	if s == nil {
		*dropped++
	}
	return s
}

// step moves s's level on with m, and returns the levels before and after.
func (l *Levels) step(s *entry, m *meter.Measurement) (from, to meter.Level) {
	l.tab.Seen(s, m.Time.UnixNano())
	from = meter.Level(s.V)
	to = l.level(from, m.Value)
	s.V = float64(to)
	return from, to
}

// level returns the level of a series at from after value v.
func (l *Levels) level(from meter.Level, v float64) meter.Level {
	v *= l.sign
	if from == meter.LevelOK && v < l.lowest {
		return meter.LevelOK // below every threshold: the common case
	}
	up := meter.LevelOK
	for lv := meter.LevelCritical; lv > meter.LevelOK; lv-- {
		if v >= l.thr[lv] {
			up = lv
			break
		}
	}
	if up >= from {
		return up
	}
	for lv := from; lv > up; lv-- {
		if v >= l.thr[lv]-l.hyst {
			return lv
		}
	}
	return up
}

func change(m *meter.Measurement, from, to meter.Level) meter.Measurement {
	return meter.Measurement{
		Name: meter.StateChange, Kind: meter.Gauge, Value: float64(to), Time: m.Time,
		Host: m.Host, ResourceID: m.ResourceID, ProjectID: m.ProjectID, UserID: m.UserID,
		Labels: []meter.Label{
			{Key: meter.StateChangeMeter, Value: m.Name},
			{Key: meter.StateChangeFrom, Value: from.String()},
			{Key: meter.StateChangeTo, Value: to.String()},
		},
	}
}

// labelsFor returns the series' labels with meterkit.state set to lv,
// made once per level and never changed after.
func labelsFor(s *entry, lv meter.Level) []meter.Label {
	if s.P[lv] == nil {
		ls := make([]meter.Label, len(s.Labels()), len(s.Labels())+1)
		copy(ls, s.Labels())
		s.P[lv] = append(ls, meter.Label{Key: meter.StateLabel, Value: lv.String()})
	}
	return s.P[lv]
}

// OrderSensitive reports true: the hysteresis depends on the order of a
// series' values (stage.OrderSensitive).
func (l *Levels) OrderSensitive() bool { return true }

// state is the checkpoint's form. Version 2 is the table's own checkpoint
// (sorted, for the same state to give the same bytes), each series' level
// as its value and the time it was last seen as its time. Version 1, which
// levels wrote before it kept its series in a series.Table, is read too:
// each series with its level by name and the time seen.
type state struct {
	Version int             `json:"version"`
	Table   json.RawMessage `json:"table,omitempty"`  // version 2
	Series  []seriesV1      `json:"series,omitempty"` // version 1
}

type seriesV1 struct {
	Name     string        `json:"name"`
	Host     string        `json:"host,omitempty"`
	Resource string        `json:"resource,omitempty"`
	Project  string        `json:"project,omitempty"`
	User     string        `json:"user,omitempty"`
	Labels   []meter.Label `json:"labels,omitempty"`
	Level    string        `json:"level"`
	Seen     int64         `json:"seen"`
	// Set from Level and Seen: the same series in the table's checkpoint,
	// which leaves level and seen aside.
	T int64   `json:"t"`
	V float64 `json:"v"`
}

// Checkpoint returns the level of every series held, as JSON.
func (l *Levels) Checkpoint() ([]byte, error) {
	tb, err := l.tab.Checkpoint()
	if err != nil {
		return nil, fmt.Errorf("levels: checkpoint: %w", err)
	}
	return json.Marshal(state{Version: 2, Table: tb})
}

// Restore replaces the levels held with those of a checkpoint; on an error
// the stage is as it was.
func (l *Levels) Restore(b []byte) error {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("levels: restore: %w", err)
	}
	tb := []byte(st.Table)
	switch st.Version {
	case 2:
		if len(tb) == 0 {
			return errors.New("levels: restore: version 2 without its table")
		}
	case 1:
		for i := range st.Series {
			ss := &st.Series[i]
			lv, err := meter.ParseLevel(ss.Level)
			if err != nil || lv == meter.LevelStale {
				return fmt.Errorf("levels: restore: series %d (%s): level %q", i, ss.Name, ss.Level)
			}
			ss.T, ss.V = ss.Seen, float64(lv)
		}
		var err error
		if tb, err = json.Marshal(state{Version: 1, Series: st.Series}); err != nil {
			return fmt.Errorf("levels: restore: version 1: %w", err)
		}
	default:
		return fmt.Errorf("levels: restore: state version %d; this stage reads versions 1 and 2", st.Version)
	}
	tab := series.New[labelSets](meter.StateLabel, l.maxSeries, l.forgetAfter)
	if err := tab.Restore(tb); err != nil {
		return fmt.Errorf("levels: restore: %w", err)
	}
	for s := range tab.All() {
		if s.V != math.Trunc(s.V) || s.V < float64(meter.LevelOK) || s.V > float64(meter.LevelCritical) {
			return fmt.Errorf("levels: restore: series %q: level %v; want 0 (ok) to 3 (critical)", s.Name(), s.V)
		}
	}
	l.tab = tab
	l.SetSeries(tab.Len())
	return nil
}
