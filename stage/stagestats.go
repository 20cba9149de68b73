package stage

import (
	"log/slog"
	"strconv"
)

// StageStats is one stage's counters, under the key a [Chain] knows it by.
type StageStats struct {
	// Name is the stage's name ([Named]; a stage made from a configuration
	// file is named by it) or, for an unnamed stage, its position in the
	// chain: "#1" for the first.
	Name  string
	Stats Stats
}

// LogValue returns the counters as a group, for slog.
func (s StageStats) LogValue() slog.Value { return s.Stats.LogValue() }

// StatsByStage returns the counters of each stage of s that counts (a
// [StatsReporter]), in order: for a [Chain], one per such stage of the
// chain, under its key (a nested chain counts as one stage, with its sums);
// for any other stage, its own, under its name or "#1". The names are
// unique: when two stages of a chain have the same name (stateless ones
// may), the second one's is followed by its position ("select#3"). It
// returns nil for
// nil s or a stage that counts nothing. Like Stats, it may be called
// concurrently with Process.
func StatsByStage(s Stage) []StageStats {
	if s == nil {
		return nil
	}
	if c, ok := As[interface{ stageStats() []StageStats }](s); ok {
		return c.stageStats()
	}
	r, ok := As[StatsReporter](s)
	if !ok {
		return nil
	}
	name := Name(s)
	if name == "" {
		name = "#1"
	}
	return []StageStats{{Name: name, Stats: r.Stats()}}
}

// stageStats returns the counters of the chain's stages that count.
func (c *chain) stageStats() []StageStats {
	var out []StageStats
	for i, s := range c.stages {
		if r, ok := As[StatsReporter](s); ok {
			name := c.keys[i]
			for _, o := range out {
				if o.Name == name {
					name += "#" + strconv.Itoa(i+1)
					break
				}
			}
			out = append(out, StageStats{Name: name, Stats: r.Stats()})
		}
	}
	return out
}
