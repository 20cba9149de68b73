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
package synthetic

import (
	"context"
	"fmt"
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
	c := Config{Name: "synthetic.seq", PerCollection: 100, Run: strconv.FormatInt(time.Now().UnixNano(), 10)}
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("synthetic: %w", err)
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
	}
	d.next.Add(n)
	return ms, nil
}

// Produced returns how many measurements the driver has made.
func (d *Driver) Produced() uint64 { return d.next.Load() }

func init() { driver.Register("synthetic", New) }
