package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/unit"
	"github.com/meterkit/meter/transport"
)

// A chain works in the agent's own copy of a collection. When a stage after
// one that changed it there breaks, the collection goes on unstaged all the
// same: as it was given, completed, without its invalid measurements.
func TestBrokenStageAfterInPlaceWorkPassesTheCollectionOn(t *testing.T) {
	u, err := unit.New(unit.Config{From: "B", To: "MiB"})
	require.NoError(t, err)
	b := &brokenStage{}
	s, r := transport.Pipe()
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithHost("h"), agent.WithStage(u, b),
		agent.WithBatch(10, time.Hour))
	require.NoError(t, err)
	got := receiveAll(t, r)
	m := meter.Measurement{Name: "memory.used", Kind: meter.Gauge, Unit: "B", Value: 2 << 20}
	require.Error(t, a.Add(m, meter.Measurement{Name: "", Kind: meter.Gauge}, m))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, a.Run(ctx))
	require.NoError(t, a.Close(context.Background()))
	ms := <-got
	require.Len(t, ms, 2)
	for _, m := range ms {
		require.Equal(t, "B", m.Unit, "unstaged")
		require.Equal(t, float64(2<<20), m.Value, "unstaged")
		require.Equal(t, "h", m.Host)
	}
	st := a.Stats()
	require.Equal(t, uint64(1), st.StageErrors)
	require.Equal(t, uint64(2), st.Staged)
	require.Equal(t, uint64(2), st.StagedOut)
	_, isInPlace := stage.Chain(u, b).(stage.InPlacer)
	require.True(t, isInPlace, "the test needs a chain that works in place")
}
