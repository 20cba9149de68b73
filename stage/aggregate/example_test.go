package aggregate_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/aggregate"
)

// The mean and maximum load of each host per minute. The window of 00:00 is
// final once a point of 00:01:30 shows it is past its end plus 30 s of
// lateness; the point of 00:00:50 that comes after that is late.
func Example() {
	lateness := meter.Duration(30 * time.Second)
	a, err := aggregate.New(aggregate.Config{Meters: stage.MustCompileMeters("cpu.util"), GroupBy: []string{"host"},
		Window: meter.Duration(time.Minute), Lateness: &lateness, Functions: []string{"mean", "max"}, DropInput: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []meter.Measurement
	for _, p := range []struct {
		sec int
		v   float64
	}{{0, 20}, {20, 60}, {40, 40}, {70, 90}, {90, 10}, {50, 99}} {
		m := meter.Measurement{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: p.v,
			Time: at.Add(time.Duration(p.sec) * time.Second), Host: "node1"}
		out, _ = a.Process(context.Background(), []meter.Measurement{m}, out[:0])
		for _, o := range out {
			fmt.Println(o.Time.Format("15:04"), o.Host, o.Name, o.Value, o.Unit)
		}
	}
	fmt.Println("late:", a.Stats().Late)
	// Output:
	// 00:00 node1 cpu.util.mean 40 %
	// 00:00 node1 cpu.util.max 60 %
	// late: 1
}
