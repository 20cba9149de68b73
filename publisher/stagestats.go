package publisher

import (
	"log/slog"

	"github.com/meterkit/meter/stage"
)

// stageBox holds the stages in use, for Stats to read without stageMu
// (held through a spool commit); New and Reconfigure store it.
type stageBox struct{ s stage.Stage }

// stageStats returns the counters of each stage in use.
func (p *Publisher) stageStats() []stage.StageStats {
	if b := p.st.counted.Load(); b != nil {
		return stage.StatsByStage(b.s)
	}
	return nil
}

// stageAttrs returns one group per stage, for the stats line.
func stageAttrs(ss []stage.StageStats) []slog.Attr {
	if len(ss) == 0 {
		return nil
	}
	attrs := make([]slog.Attr, len(ss))
	for i, s := range ss {
		attrs[i] = slog.Attr{Key: s.Name, Value: s.Stats.LogValue()}
	}
	return attrs
}
