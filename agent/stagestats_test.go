package agent_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/delta"
	"github.com/meterkit/meter/stage/rate"
	"github.com/meterkit/meter/transport"
)

// Stats has the counters of each stage, by name, for the stages in use
// (Reconfigure included); the stats line writes them as group "stages"
// after its other keys.
func TestStatsPerStage(t *testing.T) {
	s, r := transport.Pipe()
	defer r.Close()
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithHost("h"), agent.WithStage(rateStage(t)))
	require.NoError(t, err)
	defer a.Close(context.Background())
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	require.NoError(t, a.Add(cumulative(100, t0)))
	require.NoError(t, a.Add(cumulative(110, t0.Add(10*time.Second))))
	require.NoError(t, a.Add(cumulative(5, t0.Add(20*time.Second)))) // a reset
	st := a.Stats()
	require.Equal(t, []stage.StageStats{{Name: "rate", Stats: stage.Stats{In: 3, Out: 1, Filtered: 3, Resets: 1, Series: 1}}}, st.Stages)

	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("agent stats", slog.Any("", st))
	require.Contains(t, b.String(), " staged=3 staged_out=1 ", "the keys scripts read stay")
	require.Contains(t, b.String(), " stages.rate.in=3 stages.rate.out=1 stages.rate.filtered=3 stages.rate.dropped=0 ")
	require.Contains(t, b.String(), " stages.rate.resets=1 stages.rate.late=0 stages.rate.series=1\n")

	// Reconfigure: the stages in use now.
	d, err := delta.New(delta.Config{Meters: stage.MustCompileMeters("c"), As: "c.delta"})
	require.NoError(t, err)
	require.NoError(t, a.Reconfigure(context.Background(), agent.WithStage(stage.Named("delta", d))))
	st = a.Stats()
	require.Len(t, st.Stages, 1)
	require.Equal(t, "delta", st.Stages[0].Name)
	require.Zero(t, st.Stages[0].Stats.In)

	require.NoError(t, a.Reconfigure(context.Background()))
	require.Empty(t, a.Stats().Stages, "no stages")
	b.Reset()
	slog.New(slog.NewTextHandler(&b, nil)).Info("agent stats", slog.Any("", a.Stats()))
	require.NotContains(t, b.String(), "stages")
}

// allCollector acknowledges every envelope a real receiver hands over and
// keeps the values of each meter.
type allCollector struct {
	mu  sync.Mutex
	got map[string][]float64
}

func (c *allCollector) run(r transport.Receiver) (stop func()) {
	c.got = map[string][]float64{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d, err := r.Receive(ctx)
			if err != nil {
				return
			}
			c.mu.Lock()
			for _, m := range d.Envelope.Measurements {
				c.got[m.Name] = append(c.got[m.Name], m.Value)
			}
			c.mu.Unlock()
			_ = d.Ack(transport.Ack{Status: transport.StatusOK})
		}
	}()
	return func() { cancel(); <-done }
}

func (c *allCollector) values(name string) []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]float64(nil), c.got[name]...)
}

// After Reconfigure to a chain with a new stateful stage, the new chain's
// state goes into the spool with the next batch: a restart with that chain
// restores both stages, the one kept (rate, its state carried over) and the
// one added (delta), over real mangos sockets and a real spool.
func TestReconfigureStateRestoredAfterRestart(t *testing.T) {
	r := listenTCP(t, "tcp://127.0.0.1:0")
	defer r.Close()
	var col allCollector
	stop := col.run(r)
	defer stop()
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	newChain := func() []stage.Stage {
		d, err := delta.New(delta.Config{Meters: stage.MustCompileMeters("c"), As: "c.delta"})
		require.NoError(t, err)
		rt, err := rate.New(rate.Config{Meters: stage.MustCompileMeters("c"), As: "c.rate", DropInput: true})
		require.NoError(t, err)
		return []stage.Stage{stage.Named("delta", d), stage.Named("rate", rt)}
	}
	flush := func(a *agent.Agent) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.NoError(t, a.Run(ctx)) // flushes, delivers, stops
		require.NoError(t, a.Close(context.Background()))
	}
	open := func(stages ...stage.Stage) *agent.Agent {
		a, err := agent.New(dialTCP(t, r.Addr()), agent.WithLogger(quiet), agent.WithHost("h"), agent.WithID("reload"),
			agent.WithSpool(dir, agent.SpoolSync(agent.SyncNever)), agent.WithBatch(1000, time.Hour), agent.WithStage(stages...))
		require.NoError(t, err)
		return a
	}

	a := open(rateStage(t))
	require.NoError(t, a.Add(cumulative(100, t0)))
	require.NoError(t, a.Add(cumulative(110, t0.Add(10*time.Second)))) // rate 1
	require.NoError(t, a.Reconfigure(context.Background(), agent.WithStage(newChain()...)))
	require.NoError(t, a.Add(cumulative(130, t0.Add(20*time.Second)))) // rate 2 (carried); delta's first point
	flush(a)
	require.Equal(t, []float64{1, 2}, col.values("c.rate"))
	require.Empty(t, col.values("c.delta"))

	b := open(newChain()...)
	require.NoError(t, b.Add(cumulative(160, t0.Add(30*time.Second))))
	flush(b)
	require.Equal(t, []float64{1, 2, 3}, col.values("c.rate"), "rate restored: (160-130)/10 s")
	require.Equal(t, []float64{30}, col.values("c.delta"), "delta, added by Reconfigure, restored: 160-130")
}
