package stage_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

// The counters of each stage of a chain, by name, as the agent and the
// publisher report them in their Stats (and on /metrics, labelled stage).
func ExampleStatsByStage() {
	levels, err := stage.Open("levels", meter.ConfigFromJSON([]byte(`{"meters": ["cpu.util"], "warning": 80}`)))
	if err != nil {
		fmt.Println(err)
		return
	}
	keep, err := stage.Open("select", meter.ConfigFromJSON([]byte(`{"meters": ["cpu.*"]}`)))
	if err != nil {
		fmt.Println(err)
		return
	}
	chain := stage.Chain(stage.Named("cpu", keep), stage.Named("levels", levels))
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err = chain.Process(context.Background(), []meter.Measurement{
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 91, Time: at, Host: "node1", ResourceID: "total"},
		{Name: "memory.used", Kind: meter.Gauge, Unit: "B", Value: 1 << 30, Time: at, Host: "node1", ResourceID: "memory"},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range stage.StatsByStage(chain) {
		fmt.Printf("%s in=%d out=%d filtered=%d series=%d\n", s.Name, s.Stats.In, s.Stats.Out, s.Stats.Filtered, s.Stats.Series)
	}
	// Output:
	// cpu in=2 out=1 filtered=1 series=0
	// levels in=1 out=2 filtered=0 series=1
}
