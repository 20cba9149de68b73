// Package synthetic is a driver that makes up measurements: a given number
// per collection, numbered 1, 2, 3, … within one run. It is for load tests
// and for counting end to end: every measurement is unique by its "run"
// label and its value, so a store that received them can tell exactly which
// were lost and which came twice.
//
// Configuration (all optional):
//
//	{"name": "synthetic.seq", "per_collection": 100, "limit": 0, "run": ""}
//
// limit stops producing after that many measurements (0: never); run names
// this run (default: the start time in nanoseconds).
//
// # Cumulative mode
//
// With a slope, the driver makes counters instead, for the rate and delta
// stages and their tests:
//
//	{"name": "synthetic.counter", "slope": 2.5, "unit": "B", "per_collection": 4}
//
// Each slot is then a Cumulative whose value is slope x the wall-clock
// time of the collection in seconds since the Unix epoch (the measurement's
// Time, to the nanosecond). The value does not depend on the process, so a
// series goes on across an agent restart, and its rate is the slope and its
// delta slope x the seconds between two collections, whatever happened in
// between. The values are near 1.8e9 x slope, held in a float64: a rate
// over one second is the slope to about 1e-7 of it. The name defaults to
// synthetic.counter; run and limit work as in the default mode. The run
// label is part of each series: give run a fixed value for the series to
// go on across restarts (its default, the start time, makes new ones).
package synthetic

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

// Config of the synthetic driver.
type Config struct {
	Name          string `json:"name,omitempty"`
	PerCollection int    `json:"per_collection,omitempty"`
	Limit         uint64 `json:"limit,omitempty"`
	Run           string `json:"run,omitempty"`
	// Slope, when not 0, makes cumulatives: slope x wall-clock seconds.
	Slope float64 `json:"slope,omitempty"`
	// Unit of the cumulatives; none when empty.
	Unit string `json:"unit,omitempty"`
}

// Driver makes numbered measurements.
type Driver struct {
	cfg    Config
	labels []meter.Label
	slots  []string // resource ids "slot-0", "slot-1", …: one series per slot
	next   atomic.Uint64
}

// New is the factory registered as "synthetic".
func New(cfg driver.Config) (driver.Driver, error) {
	c := Config{PerCollection: 100, Run: strconv.FormatInt(time.Now().UnixNano(), 10)}
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("synthetic: %w", err)
	}
	switch {
	case math.IsNaN(c.Slope) || math.IsInf(c.Slope, 0):
		return nil, fmt.Errorf("synthetic: config: slope %v; want a finite number", c.Slope)
	case c.Slope != 0 && c.Slope*float64(maxYear2261) > math.MaxFloat64/2:
		return nil, fmt.Errorf("synthetic: config: slope %v too large", c.Slope)
	case c.Name == "" && c.Slope != 0:
		c.Name = "synthetic.counter"
	case c.Name == "":
		c.Name = "synthetic.seq"
	}
	if c.PerCollection <= 0 || c.PerCollection > 1_000_000 {
		return nil, fmt.Errorf("synthetic: config: per_collection %d out of range 1-1000000", c.PerCollection)
	}
	d := &Driver{cfg: c, labels: []meter.Label{{Key: "run", Value: c.Run}}, slots: make([]string, c.PerCollection)}
	for i := range d.slots {
		d.slots[i] = "slot-" + strconv.Itoa(i)
	}
	return d, nil
}

// Collect returns the next PerCollection numbers, one per slot (fewer once Limit is near).
func (d *Driver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := uint64(d.cfg.PerCollection)
	first := d.next.Load()
	if d.cfg.Limit > 0 {
		n = min(n, d.cfg.Limit-min(first, d.cfg.Limit))
	}
	now := time.Now()
	ms := make([]meter.Measurement, n)
	for i := range ms {
		ms[i] = meter.Measurement{Name: d.cfg.Name, Kind: meter.Gauge, Value: float64(first + uint64(i) + 1),
			Time: now, ResourceID: d.slots[i], Labels: d.labels}
		if d.cfg.Slope != 0 {
			ms[i].Kind, ms[i].Unit, ms[i].Value = meter.Cumulative, d.cfg.Unit, d.cfg.Slope*float64(now.UnixNano())/1e9
		}
	}
	d.next.Add(n)
	return ms, nil
}

// Produced returns how many measurements the driver has made.
func (d *Driver) Produced() uint64 { return d.next.Load() }

func init() { driver.Register("synthetic", New) }

// maxYear2261 is about the last second meter.Validate accepts.
const maxYear2261 = 9.2e9
