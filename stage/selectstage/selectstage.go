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
// agent, to send less; in the publisher, to keep a store to some meters.
package selectstage

import (
	"context"
	"errors"
	"fmt"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
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
		if s.meters.Match(in[i].Name) {
			out = append(out, in[i])
		}
	}
	kept := len(out) - n
	s.Count(stage.Stats{In: uint64(len(in)), Out: uint64(kept), Filtered: uint64(len(in) - kept)})
	return out, nil
}
