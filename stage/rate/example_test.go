package rate_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/rate"
)

// libvirt's cpu_util: cpu counts nanoseconds of CPU time, and the guest has
// 2 vCPUs. 90e9 ns in a minute is 1.5 s per second, 75 % of 2 vCPUs.
func Example() {
	r, err := rate.New(rate.Config{Meters: stage.MustCompileMeters("cpu"), As: "cpu_util", PercentOf: rate.PercentOf{Label: "vcpus"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	labels := []meter.Label{{Key: "vcpus", Value: "2"}}
	var out []meter.Measurement
	for i, v := range []float64{1e12, 1e12 + 90e9, 1e12 + 150e9, 20e9} {
		m := meter.Measurement{Name: "cpu", Kind: meter.Cumulative, Unit: "ns", Value: v,
			Time: at.Add(time.Duration(i) * time.Minute), Host: "compute1", ResourceID: "uuid-a", Labels: labels}
		out, _ = r.Process(context.Background(), []meter.Measurement{m}, out[:0])
		for _, o := range out {
			fmt.Println(o.Time.Format("15:04"), o.Name, o.Kind, o.Value, o.Unit)
		}
	}
	fmt.Println("resets:", r.Stats().Resets)
	// Output:
	// 00:00 cpu cumulative 1e+12 ns
	// 00:01 cpu cumulative 1.09e+12 ns
	// 00:01 cpu_util gauge 75 %
	// 00:02 cpu cumulative 1.15e+12 ns
	// 00:02 cpu_util gauge 50 %
	// 00:03 cpu cumulative 2e+10 ns
	// resets: 1
}
