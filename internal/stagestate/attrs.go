package stagestate

import (
	"log/slog"

	"github.com/meterkit/meter/stage"
)

// Attrs returns one group per stage, named after it, with its counters,
// for the agent's and the publisher's stats line.
func Attrs(ss []stage.StageStats) []slog.Attr {
	if len(ss) == 0 {
		return nil
	}
	attrs := make([]slog.Attr, len(ss))
	for i, s := range ss {
		attrs[i] = slog.Attr{Key: s.Name, Value: s.Stats.LogValue()}
	}
	return attrs
}
