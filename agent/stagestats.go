package agent

import "github.com/meterkit/meter/stage"

// stageBox holds the stages in use, for Stats to read without the agent's
// lock; New and Reconfigure store it.
type stageBox struct{ s stage.Stage }

// stageStats returns the counters of each stage in use.
func (a *Agent) stageStats() []stage.StageStats {
	if b := a.rl.stages.Load(); b != nil {
		return stage.StatsByStage(b.s)
	}
	return nil
}
