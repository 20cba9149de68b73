package publisher

import "github.com/meterkit/meter/stage"

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
