package stagetest

import (
	"strconv"
	"time"

	"github.com/meterkit/meter"
)

// Sample returns what Run uses when given no batches: three collections of
// one host, taken a minute apart, shaped like driver/host's output: cpu.util
// per CPU and in total, cpu.time per CPU and mode, memory.* in bytes, disk.* per
// device, with label slices shared between measurements as drivers share
// them. Values rise from collection to collection (cpu.util of cpu0 is 50,
// 85 then 97), so that thresholds are crossed.
func Sample() [][]meter.Measurement {
	return HostBatches(3, 2, 2)
}

// modes are cpu.time's label slices, one per mode, shared as driver/host
// shares them.
var modes = func() (ls [8][]meter.Label) {
	for i, m := range [...]string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"} {
		ls[i] = []meter.Label{{Key: "mode", Value: m}}
	}
	return ls
}()

// HostBatches returns n collections of one host with cpus CPUs and disks
// disks; see Sample. Collection i is taken at 2026-01-01T00:00:00Z plus i
// minutes.
func HostBatches(n, cpus, disks int) [][]meter.Measurement {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	util := []float64{50, 85, 97, 60, 20}
	out := make([][]meter.Measurement, n)
	for i := range n {
		t := start.Add(time.Duration(i) * time.Minute)
		m := func(name string, kind meter.Kind, unit, res string, v float64, ls []meter.Label) meter.Measurement {
			return meter.Measurement{Name: name, Kind: kind, Unit: unit, Value: v, Time: t, Host: "node1", ResourceID: res, Labels: ls}
		}
		var b []meter.Measurement
		for c := range cpus {
			res := "cpu" + strconv.Itoa(c)
			b = append(b, m("cpu.util", meter.Gauge, "%", res, util[(i+c)%len(util)], nil))
			for j, ls := range modes {
				b = append(b, m("cpu.time", meter.Cumulative, "s", res, float64(1000*(i+1)+10*c+j), ls))
			}
		}
		b = append(b, m("cpu.util", meter.Gauge, "%", "total", util[i%len(util)], nil))
		const gib = 1 << 30
		b = append(b,
			m("memory.total", meter.Gauge, "B", "memory", 16*gib, nil),
			m("memory.used", meter.Gauge, "B", "memory", float64(4+4*(i%3))*gib, nil),
			m("memory.available", meter.Gauge, "B", "memory", float64(12-4*(i%3))*gib, nil))
		for d := range disks {
			res := "sd" + string(rune('a'+d))
			dev := []meter.Label{{Key: "device", Value: res}, {Key: "type", Value: "disk"}}
			b = append(b,
				m("disk.read.bytes", meter.Cumulative, "B", res, float64((i+1)*(d+1))*1e9, dev),
				m("disk.write.bytes", meter.Cumulative, "B", res, float64((i+1)*(d+2))*1e9, dev),
				m("disk.io.time", meter.Cumulative, "s", res, float64((i+1)*10), dev))
		}
		out[i] = b
	}
	return out
}
