// Package selectstage is the "select" stage: it keeps or drops measurements
// by meter name, with the patterns of a Ceilometer pipeline's `meters:`
// list (see stage.Meters):
//
//	# in a -stages file:
//	- type: select
//	  meters: ["*", "!disk.*", "!cpu.time"]   # everything but disk.* and cpu.time
//
// What it does to a measurement it keeps: nothing.
//
//	| field  | select                                                    |
//	|--------|-----------------------------------------------------------|
//	| name   | unchanged                                                 |
//	| kind   | unchanged                                                 |
//	| unit   | unchanged                                                 |
//	| value  | unchanged                                                 |
//	| labels | unchanged (the same slice)                                |
//	| others | dropped when `meters` does not select their name; counted |
//	|        | in Stats as filtered                                      |
//
// It keeps the order of the batch, holds no state and runs anywhere: in the
// agent, to send less; in the publisher, to keep a store to some meters. It
// works in place (a stage.InPlacer), and remembers what it decided for the
// names it saw lately, so that a name seen before costs a string
// comparison. A name it saw before leaves it as the string it held (the
// same bytes, maybe of an earlier batch), which the stages after it then
// compare at once.
package selectstage

import (
	"context"
	"errors"
	"fmt"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/internal/hint"
)

func init() { stage.Register("select", Open) }

// Config is the stage's settings.
type Config struct {
	// Meters are the meters kept; required.
	Meters stage.Meters `json:"meters"`
}

// Select is the stage.
type Select struct {
	stage.Counters
	meters stage.Meters
	hint   hint.Matches
}

// New makes the stage.
func New(c Config) (*Select, error) {
	if c.Meters.IsZero() {
		return nil, errors.New("select: meters: required (a list of patterns such as [\"cpu.*\", \"!cpu.time\"])")
	}
	return &Select{meters: c.Meters}, nil
}

// Open makes the stage from its settings, for the registry.
func Open(cfg meter.Config) (stage.Stage, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("select: %w", err)
	}
	return New(c)
}

// Process appends the measurements the stage's meters select.
func (s *Select) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	n := len(out)
	for i := range in {
		if ok, found := s.hint.At(i, in[i].Name); found { // inlined: the name in the bytes held
			if ok {
				out = append(out, in[i])
			}
		} else if name, ok := s.match(i, in[i].Name); ok {
			out = append(out, in[i])
			out[len(out)-1].Name = name
		}
	}
	s.count(len(in), len(out)-n)
	return out, nil
}

// ProcessInPlace keeps in ms the measurements the stage's meters select.
func (s *Select) ProcessInPlace(_ context.Context, ms []meter.Measurement) ([]meter.Measurement, error) {
	k := 0
	for i := range ms {
		// match written out: a name in the bytes held makes no call, another
		// one call.
		name := ms[i].Name
		ok, found := s.hint.At(i, name)
		if !found {
			var same string
			if same, ok, found = s.hint.Lookup(i, name); found {
				name = same
			} else {
				ok = s.matchNew(i, name)
			}
		}
		if ok {
			if k != i {
				ms[k] = ms[i]
			}
			ms[k].Name = name
			k++
		}
	}
	clear(ms[k:]) // what it dropped, moved or not
	s.count(len(ms), k)
	return ms[:k], nil
}

// match reports whether the stage keeps name, at position i of its batch,
// and returns the name to keep: the string its hint holds when it holds
// it, so that the stages after it, which saw that string too, compare a
// measurement's name at once (hint.Lookup).
func (s *Select) match(i int, name string) (string, bool) {
	same, ok, found := s.hint.Lookup(i, name)
	if !found {
		return name, s.matchNew(i, name)
	}
	return same, ok
}

// matchNew matches name, at position i of its batch, against the stage's
// meters, and puts the answer in the hint.
func (s *Select) matchNew(i int, name string) bool {
	ok := s.meters.Match(name)
	s.hint.Put(i, name, ok)
	return ok
}

func (s *Select) count(in, kept int) {
	s.Count(stage.Stats{In: uint64(in), Out: uint64(kept), Filtered: uint64(in - kept)})
}
