package delta_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/delta"
)

// Bytes sent per minute from a cumulative counter that resets once (the
// interface came back after a reboot).
func Example() {
	d, err := delta.New(delta.Config{Meters: stage.MustCompileMeters("network.outgoing.bytes"), As: "$(name).delta", DropInput: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []meter.Measurement
	for i, v := range []float64{5000, 8000, 8500, 300, 1300} {
		m := meter.Measurement{Name: "network.outgoing.bytes", Kind: meter.Cumulative, Unit: "B", Value: v,
			Time: at.Add(time.Duration(i) * time.Minute), Host: "node1", ResourceID: "eth0"}
		out, _ = d.Process(context.Background(), []meter.Measurement{m}, out[:0])
		for _, o := range out {
			fmt.Println(o.Time.Format("15:04"), o.Name, o.Kind, o.Value, o.Unit)
		}
	}
	fmt.Println("resets:", d.Stats().Resets)
	// Output:
	// 00:01 network.outgoing.bytes.delta delta 3000 B
	// 00:02 network.outgoing.bytes.delta delta 500 B
	// 00:04 network.outgoing.bytes.delta delta 1000 B
	// resets: 1
}
