package levels_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/levels"
)

// A series crossing warning 80, alert 90 and critical 95 with a hysteresis
// of 5: 87 keeps it at alert, 84 takes it back to warning.
func Example() {
	warning, alert, critical := 80.0, 90.0, 95.0
	l, err := levels.New(levels.Config{Meters: stage.MustCompileMeters("cpu.util"),
		Warning: &warning, Alert: &alert, Critical: &critical, Hysteresis: 5})
	if err != nil {
		fmt.Println(err)
		return
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []meter.Measurement
	for i, v := range []float64{50, 91, 87, 84, 97} {
		m := meter.Measurement{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: v,
			Time: at.Add(time.Duration(i) * time.Minute), Host: "node1", ResourceID: "cpu0"}
		out, _ = l.Process(context.Background(), []meter.Measurement{m}, out[:0])
		for _, o := range out {
			state, _ := o.Label(meter.StateLabel)
			fmt.Println(o.Time.Format("15:04"), o.Name, o.Value, state, o.Labels)
		}
	}
	// Output:
	// 00:00 cpu.util 50 ok [{meterkit.state ok}]
	// 00:01 cpu.util 91 alert [{meterkit.state alert}]
	// 00:01 meterkit.state.change 2  [{meter cpu.util} {from ok} {to alert}]
	// 00:02 cpu.util 87 alert [{meterkit.state alert}]
	// 00:03 cpu.util 84 warning [{meterkit.state warning}]
	// 00:03 meterkit.state.change 1  [{meter cpu.util} {from alert} {to warning}]
	// 00:04 cpu.util 97 critical [{meterkit.state critical}]
	// 00:04 meterkit.state.change 3  [{meter cpu.util} {from warning} {to critical}]
}
