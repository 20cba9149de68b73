//go:build integration

package riemann_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink/riemann"
	"github.com/meterkit/meter/sink/riemann/riemanntest"
	"github.com/meterkit/meter/stage"
	_ "github.com/meterkit/meter/stage/levels"
	"github.com/meterkit/meter/transport"
)

// TestIntegrationLevelsStateToRiemann is issue 13's end to end check with
// real parts: an agent with a levels stage, made from a -stages entry
// through the registry, on a synthetic series that crosses its thresholds;
// a publisher (over transport.Pipe) with the Riemann sink writing to
// riemanntest; and Debian's riemann-client reading back, after each
// collection, the state the stage set.
func TestIntegrationLevelsStateToRiemann(t *testing.T) {
	var specs []stage.Spec
	require.NoError(t, json.Unmarshal([]byte(`[{"type": "levels", "meters": ["cpu.util"],
		"warning": 80, "alert": 90, "critical": 95, "hysteresis": 5}]`), &specs))
	st, err := stage.OpenChain(specs)
	require.NoError(t, err)

	srv := riemanntest.NewServer(t)
	s := newSink(t, srv.Addr(), riemann.WithTags("meterkit"))
	send, recv := transport.Pipe()
	p, err := publisher.New(recv, publisher.WithSink("riemann", s), publisher.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	a, err := agent.New(send, agent.WithStage(st), agent.WithBatch(0, 10*time.Millisecond), agent.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.Run(context.Background()) })
	wg.Go(func() { _ = a.Run(ctx) })
	defer func() {
		cancel()
		_ = a.Close(context.Background())
		_ = p.Close(context.Background())
		wg.Wait()
	}()
	staged := 0
	start := time.Now().Add(-time.Hour).Truncate(time.Second)

	// web1's cpu.util, one collection a minute, with the state each value
	// leaves it in: up through every level, then down with hysteresis (93
	// stays critical, above 95-5; 88 is alert, above 90-5; 70 is ok, below
	// 80-5). web2 is critical from its first value but says
	// riemann.state=maintenance, which wins.
	steps := []struct {
		value float64
		state string
	}{
		{50, "ok"}, {85, "warning"}, {92, "alert"}, {97, "critical"}, {93, "critical"}, {88, "alert"}, {70, "ok"},
	}
	type change struct {
		host     string
		from, to string
		at       int64 // unix µs
	}
	var wantChanges []change
	prev := "ok"
	for i, step := range steps {
		at := start.Add(time.Duration(i) * time.Minute)
		batch := []meter.Measurement{{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: step.value, Time: at,
			Host: "web1", ResourceID: "cpu0", Labels: []meter.Label{{Key: "cpu", Value: "0"}}}}
		if i == 0 {
			batch = append(batch, meter.Measurement{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 97, Time: at,
				Host: "web2", Labels: []meter.Label{{Key: riemann.LabelState, Value: "maintenance"}}})
			wantChanges = append(wantChanges, change{"web2", "ok", "critical", at.UnixMicro()})
		}
		if step.state != prev {
			wantChanges = append(wantChanges, change{"web1", prev, step.state, at.UnixMicro()})
			prev = step.state
		}

		// The agent stages what it is given and delivers it; the publisher
		// acknowledges once the sink wrote it.
		require.NoError(t, a.Add(batch...))
		staged += len(batch)
		require.Eventually(t, func() bool {
			st := a.Stats()
			return st.Staged == uint64(staged) && st.AckedMeasurements == st.StagedOut
		}, 10*time.Second, 5*time.Millisecond, "step %d delivered", i)

		evs := query(t, `service = "cpu.util" and host = "web1"`, srv.Port())
		require.Len(t, evs, 1)
		e := evs[0]
		require.Equal(t, step.state, e.State, "step %d: value %v", i, step.value)
		require.Equal(t, step.value, e.MetricD)
		require.Equal(t, at.Unix(), e.Time)
		require.Equal(t, map[string]string{"cpu": "0", "unit": "%", "resource_id": "cpu0", "kind": "gauge"}, e.Attributes,
			"no meterkit.* attribute")
		if i == 0 {
			t.Logf("riemann-client query -j: %v", e.Raw)
			evs = query(t, `service = "cpu.util" and host = "web2"`, srv.Port())
			require.Len(t, evs, 1)
			require.Equal(t, "maintenance", evs[0].State, "an explicit riemann.state wins")
			require.NotContains(t, evs[0].Attributes, meter.StateLabel)
		}
	}

	// The index keeps web1's last state, found by state too.
	evs := query(t, `state = "ok" and service = "cpu.util"`, srv.Port())
	require.Len(t, evs, 1)
	require.Equal(t, "web1", evs[0].Host)
	require.Empty(t, query(t, `state = "critical"`, srv.Port()))

	// Every change reached the server, in order, as meterkit.state.change
	// events: metric the new level, attributes meter, from and to.
	var got []change
	for _, e := range srv.Events() {
		if e.Service != meter.StateChange {
			continue
		}
		to, err := meter.ParseLevel(e.Attributes[meter.StateChangeTo])
		require.NoError(t, err)
		require.Equal(t, float64(to), e.Metric, "the value is the new level")
		require.Equal(t, "cpu.util", e.Attributes[meter.StateChangeMeter])
		require.Equal(t, "gauge", e.Attributes["kind"])
		require.Equal(t, riemann.DefaultState, e.State, "a change carries no level label")
		got = append(got, change{e.Host, e.Attributes[meter.StateChangeFrom], e.Attributes[meter.StateChangeTo], e.Time.UnixMicro()})
	}
	require.Len(t, wantChanges, 6)
	require.Equal(t, wantChanges, got)

	// riemann-client reads them back too: the index holds the latest of
	// each host.
	evs = query(t, `service = "meterkit.state.change"`, srv.Port())
	require.Len(t, evs, 2)
	byHost := map[string]queryEvent{}
	for _, e := range evs {
		byHost[e.Host] = e
	}
	last := byHost["web1"]
	require.Equal(t, map[string]string{"meter": "cpu.util", "from": "alert", "to": "ok", "resource_id": "cpu0", "kind": "gauge"},
		last.Attributes)
	require.Equal(t, 0.0, last.MetricD)
	require.Equal(t, start.Add(6*time.Minute).Unix(), last.Time)
	require.Equal(t, float64(meter.LevelCritical), byHost["web2"].MetricD)
	require.Equal(t, "critical", byHost["web2"].Attributes[meter.StateChangeTo])
}
