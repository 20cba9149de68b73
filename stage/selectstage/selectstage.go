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
// comparison.
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
		if s.match(i, in[i].Name) {
			out = append(out, in[i])
		}
	}
	s.count(len(in), len(out)-n)
	return out, nil
}

// ProcessInPlace keeps in ms the measurements the stage's meters select.
func (s *Select) ProcessInPlace(_ context.Context, ms []meter.Measurement) ([]meter.Measurement, error) {
	k := 0
	for i := range ms {
		if s.match(i, ms[i].Name) {
			if k != i {
				ms[k] = ms[i]
			}
			k++
		}
	}
	clear(ms[k:]) // what it dropped, moved or not
	s.count(len(ms), k)
	return ms[:k], nil
}

func (s *Select) match(i int, name string) bool {
	ok, found := s.hint.Get(i, name)
	if !found {
		ok = s.meters.Match(name)
		s.hint.Put(i, name, ok)
	}
	return ok
}

func (s *Select) count(in, kept int) {
	s.Count(stage.Stats{In: uint64(in), Out: uint64(kept), Filtered: uint64(in - kept)})
}
