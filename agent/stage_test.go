package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/stage"
	_ "github.com/meterkit/meter/stage/selectstage"
	_ "github.com/meterkit/meter/stage/unit"
	"github.com/meterkit/meter/transport"
)

// receiveAll acknowledges every envelope on r and returns what arrived once
// the agent's Run has returned and the pipe is closed.
func receiveAll(t *testing.T, r transport.Receiver) <-chan []meter.Measurement {
	got := make(chan []meter.Measurement, 1)
	go func() {
		var ms []meter.Measurement
		for {
			d, err := r.Receive(context.Background())
			if err != nil {
				got <- ms
				return
			}
			for _, m := range d.Envelope.Measurements {
				m.Labels = append([]meter.Label(nil), m.Labels...)
				ms = append(ms, m)
			}
			_ = d.Ack(transport.Ack{Status: transport.StatusOK})
		}
	}()
	return got
}

// The agent's stages run on what Add gives (and on every collection) before
// batching: what is sent is their output.
func TestWithStagesShapesWhatIsSent(t *testing.T) {
	var specs []stage.Spec
	require.NoError(t, json.Unmarshal([]byte(`[
		{"type": "select", "meters": ["memory.*", "!memory.free"]},
		{"type": "unit", "meters": ["memory.*"], "from": "B", "to": "MiB"}
	]`), &specs))
	s, r := transport.Pipe()
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithHost("h"), agent.WithStages(specs))
	require.NoError(t, err)
	got := receiveAll(t, r)
	require.NoError(t, a.Add(
		meter.Measurement{Name: "memory.used", Kind: meter.Gauge, Unit: "B", Value: 3 << 20},
		meter.Measurement{Name: "memory.free", Kind: meter.Gauge, Unit: "B", Value: 1 << 20},
		meter.Measurement{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 5},
	))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, a.Run(ctx))
	require.NoError(t, a.Close(context.Background()))
	ms := <-got
	require.Len(t, ms, 1)
	require.Equal(t, "memory.used", ms[0].Name)
	require.Equal(t, "MiB", ms[0].Unit)
	require.Equal(t, 3.0, ms[0].Value)
	st := a.Stats()
	require.Equal(t, uint64(3), st.Staged)
	require.Equal(t, uint64(1), st.StagedOut)
	require.Equal(t, uint64(1), st.AckedMeasurements)
}

type brokenStage struct{ closed int }

func (b *brokenStage) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	return append(out, in[:1]...), errors.New("broken")
}

func (b *brokenStage) Close() error { b.closed++; return nil }

// A broken stage loses nothing: the collection goes on unstaged, counted.
// The agent owns its stages and closes them once.
func TestBrokenStagePassesTheCollectionOn(t *testing.T) {
	s, r := transport.Pipe()
	b := &brokenStage{}
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithHost("h"), agent.WithStage(b),
		agent.WithBatch(1, time.Hour))
	require.NoError(t, err)
	got := receiveAll(t, r)
	require.NoError(t, a.Add(gauge("a", 1), gauge("b", 2)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, a.Run(ctx))
	require.NoError(t, a.Close(context.Background()))
	require.NoError(t, a.Close(context.Background()))
	require.Len(t, <-got, 2)
	require.Equal(t, uint64(1), a.Stats().StageErrors)
	require.Equal(t, 1, b.closed)

	_, err = agent.New(s, agent.WithStage(nil))
	require.ErrorContains(t, err, "WithStage: stage 0 is nil")
	_, err = agent.New(s, agent.WithStages([]stage.Spec{{Type: "no-such-stage"}}))
	require.ErrorContains(t, err, "no-such-stage")
}
