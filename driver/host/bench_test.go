package host

import (
	"context"
	"os"
	"testing"

	"github.com/meterkit/meter/driver"
)

func openAll(b *testing.B) []driver.Driver {
	b.Helper()
	if _, err := os.Stat("/proc/stat"); err != nil {
		b.Skip("no /proc/stat here:", err)
	}
	ds := make([]driver.Driver, len(names))
	for i, name := range names {
		d, err := driver.Open(name, driver.Config{})
		if err != nil {
			b.Fatal(err)
		}
		ds[i] = d
	}
	return ds
}

// BenchmarkCollectAll collects the full host set once per iteration on
// this machine's /proc, as an agent with every host driver would.
func BenchmarkCollectAll(b *testing.B) {
	ds := openAll(b)
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, d := range ds {
			ms, err := d.Collect(ctx)
			if err != nil {
				b.Fatal(err)
			}
			n = len(ms)
		}
	}
	_ = n
}

// BenchmarkCollect measures each driver alone.
func BenchmarkCollect(b *testing.B) {
	ds := openAll(b)
	ctx := context.Background()
	for i, d := range ds {
		b.Run(names[i], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Collect(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
