package stage_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	_ "github.com/meterkit/meter/stage/arithmetic"  // registers "arithmetic"
	_ "github.com/meterkit/meter/stage/levels"      // registers "levels"
	_ "github.com/meterkit/meter/stage/selectstage" // registers "select"
	_ "github.com/meterkit/meter/stage/unit"        // registers "unit"
)

// A chain made from settings, as a -stages file lists them: keep memory
// meters, derive a percentage, give bytes in MiB, and check levels on the
// percentage. The levels stage is named: its state is keyed by that name.
func ExampleChain() {
	type spec struct{ name, typ, settings string }
	var stages []stage.Stage
	for _, sp := range []spec{
		{"select", "select", `{"meters": ["memory.*"]}`},
		{"percent", "arithmetic", `{"expr": "$(memory.used) / $(memory.total) * 100", "as": "memory.usage.percent", "unit": "%"}`},
		{"mib", "unit", `{"from": "B", "to": "MiB"}`},
		{"levels", "levels", `{"meters": ["memory.usage.percent"], "warning": 80, "critical": 95}`},
	} {
		s, err := stage.Open(sp.typ, meter.ConfigFromJSON([]byte(sp.settings)))
		if err != nil {
			fmt.Println(err)
			return
		}
		stages = append(stages, stage.Named(sp.name, s))
	}
	chain := stage.Chain(stages...)

	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := []meter.Measurement{
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12, Time: at, Host: "node1", ResourceID: "total"},
		{Name: "memory.total", Kind: meter.Gauge, Unit: "B", Value: 16 << 30, Time: at, Host: "node1", ResourceID: "memory"},
		{Name: "memory.used", Kind: meter.Gauge, Unit: "B", Value: 14 << 30, Time: at, Host: "node1", ResourceID: "memory"},
	}
	out, err := chain.Process(context.Background(), batch, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range out {
		fmt.Println(m.Name, m.Value, m.Unit, m.Labels)
	}
	st, _ := stage.As[stage.StatsReporter](chain)
	fmt.Printf("%+v\n", st.Stats())
	_, stateful := stage.As[stage.Checkpointer](chain)
	fmt.Println("stateful:", stateful)
	// Output:
	// memory.total 16384 MiB []
	// memory.used 14336 MiB []
	// memory.usage.percent 87.5 % [{meterkit.state warning}]
	// meterkit.state.change 1  [{meter memory.usage.percent} {from ok} {to warning}]
	// {In:3 Out:4 Filtered:1 Dropped:0 Missing:0 Resets:0 Late:0 Series:1}
	// stateful: true
}
