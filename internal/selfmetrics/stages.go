package selfmetrics

import "github.com/meterkit/meter/stage"

// Stages returns a collector of each stage's counters (stage.Stats), as
// meterkit_stage_<key>_total (meterkit_stage_series, a gauge) labelled
// stage with the stage's name; read returns them (the agent's or the
// publisher's Stats().Stages).
func Stages(read func() []stage.StageStats) *Collector {
	return New("meterkit_stage_", stage.Stats{}, "stage",
		func(key string) string { return key + " of one stage, by its name in the chain (stage.Stats)" },
		func() []Row {
			ss := read()
			rows := make([]Row, len(ss))
			for i, s := range ss {
				rows[i] = Row{Label: s.Name, Stats: s.Stats}
			}
			return rows
		})
}
