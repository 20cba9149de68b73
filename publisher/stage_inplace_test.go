package publisher_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/unit"
)

// The stages work in the worker's own copy of a batch. When a stage after
// one that changed it there breaks, the batch goes on unstaged all the
// same: as the agent sent it, without its invalid measurements.
func TestBrokenStageAfterInPlaceWorkPassesTheBatchOn(t *testing.T) {
	u, err := unit.New(unit.Config{From: "B", To: "MiB"})
	require.NoError(t, err)
	_, isInPlace := stage.Chain(u, &brokenStage{}).(stage.InPlacer)
	require.True(t, isInPlace, "the test needs a chain that works in place")
	var rec sink.Recorder
	s, p, stop := run(t, publisher.WithSink("rec", &rec), publisher.WithStage(u, &brokenStage{}))
	invalid := meter.Measurement{Name: "", Kind: meter.Gauge}
	require.NoError(t, s.Send(context.Background(), envelope(1, bytesGauge("a", 2<<20), invalid, bytesGauge("b", 4<<20))))
	stop()
	got := rec.Measurements()
	require.Len(t, got, 2)
	require.Equal(t, "B", got[0].Unit, "unstaged")
	require.Equal(t, float64(2<<20), got[0].Value, "unstaged")
	require.Equal(t, float64(4<<20), got[1].Value, "unstaged")
	st := p.Stats()
	require.Equal(t, uint64(1), st.StageErrors)
	require.Equal(t, uint64(1), st.Acked)
}
