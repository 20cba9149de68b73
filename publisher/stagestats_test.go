package publisher_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/stage"
)

// Stats has the counters of each stage, by name, for the stages in use;
// the stats line writes them as group "stages" after its other keys.
func TestStatsPerStage(t *testing.T) {
	var rec sink.Recorder
	s, p, stop := run(t, publisher.WithSink("rec", &rec), publisher.WithSpool(t.TempDir()),
		publisher.WithStage(levelsStage(t)))
	defer stop()
	cpu := gauge("cpu.util", 50)
	require.NoError(t, s.Send(context.Background(), envelope(1, cpu, gauge("other", 1))))
	require.Eventually(t, func() bool { return rec.Len() == 3 }, 5*time.Second, time.Millisecond)
	st := p.Stats()
	require.Equal(t, []stage.StageStats{{Name: "levels", Stats: stage.Stats{In: 2, Out: 3, Series: 1}}}, st.Stages)

	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("publisher stats", slog.Any("", st))
	require.Contains(t, b.String(), " staged=2 staged_out=3 ")
	require.Contains(t, b.String(), " stages.levels.in=2 stages.levels.out=3 ")
	require.Contains(t, b.String(), " stages.levels.series=1\n")

	require.NoError(t, p.Reconfigure(context.Background(), publisher.WithSink("rec", &rec)))
	require.Empty(t, p.Stats().Stages)
}

// One named stage's state is kept under its name, as in a chain: a
// Reconfigure from the stage alone to a chain holding a stage of that name
// carries it over, and a restart on the spool restores the whole chain.
func TestReconfigureCarriesOneNamedStageIntoAChain(t *testing.T) {
	dir := t.TempDir()
	var rec, rec2 sink.Recorder // a sink is closed with its publisher
	named := func(rec *sink.Recorder, name string) []float64 {
		var v []float64
		for _, m := range rec.Measurements() {
			if m.Name == name {
				v = append(v, m.Value)
			}
		}
		return v
	}
	chain := func() publisher.Option {
		return publisher.WithStage(stage.Named("count", &numbering{}), stage.Named("batches", &numberer{}))
	}
	s, p, stop := run(t, publisher.WithSink("rec", &rec), publisher.WithSpool(dir),
		publisher.WithStage(stage.Named("count", &numbering{})))
	sendSeqs(t, s, 1, 2)
	require.NoError(t, p.Reconfigure(context.Background(), publisher.WithSink("rec", &rec), chain()))
	sendSeqs(t, s, 3, 3)
	require.Eventually(t, func() bool { return rec.Len() == 4 }, 5*time.Second, time.Millisecond)
	stop()
	require.Equal(t, []float64{1, 2, 3}, named(&rec, "m"), "count counts on in the chain")
	require.Equal(t, []float64{1}, named(&rec, "n"), "batches starts")

	s, _, stop = run(t, publisher.WithSink("rec", &rec2), publisher.WithSpool(dir), chain())
	defer stop()
	sendSeqs(t, s, 4, 4)
	require.Eventually(t, func() bool { return rec2.Len() == 2 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []float64{4}, named(&rec2, "m"), "count restored from the spool")
	require.Equal(t, []float64{2}, named(&rec2, "n"), "batches restored from the spool")
}
