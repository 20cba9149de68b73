package stage

import "sync/atomic"

// Counters keeps a stage's [Stats] atomically, so that Stats may be read
// while Process runs. A stage embeds it to be a [StatsReporter], and adds
// its counts once per batch:
//
//	type myStage struct {
//		stage.Counters
//		...
//	}
//
//	s.Count(stage.Stats{In: uint64(len(in)), Out: uint64(len(out) - n), Dropped: dropped})
type Counters struct {
	in, out, filtered, dropped, missing, resets, late, series atomic.Uint64
}

// Count adds d's counters, except Series, which it sets when d.Series is
// not zero (see SetSeries).
func (c *Counters) Count(d Stats) {
	for _, f := range [...]struct {
		v *atomic.Uint64
		d uint64
	}{{&c.in, d.In}, {&c.out, d.Out}, {&c.filtered, d.Filtered}, {&c.dropped, d.Dropped},
		{&c.missing, d.Missing}, {&c.resets, d.Resets}, {&c.late, d.Late}} {
		if f.d != 0 {
			f.v.Add(f.d)
		}
	}
	if d.Series != 0 {
		c.series.Store(d.Series)
	}
}

// SetSeries sets the number of series held now, zero included.
func (c *Counters) SetSeries(n int) { c.series.Store(uint64(n)) }

// Stats returns the counters.
func (c *Counters) Stats() Stats {
	return Stats{In: c.in.Load(), Out: c.out.Load(), Filtered: c.filtered.Load(), Dropped: c.dropped.Load(),
		Missing: c.missing.Load(), Resets: c.resets.Load(), Late: c.late.Load(), Series: c.series.Load()}
}
