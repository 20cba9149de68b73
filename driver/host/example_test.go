package host_test

import (
	"context"
	"fmt"
	"log"

	"github.com/meterkit/meter/driver"
	_ "github.com/meterkit/meter/driver/host" // registers cpu, memory, load, ...
)

// Open a host driver by name and collect once. The configuration points
// the driver at a fixture tree instead of /proc.
func Example() {
	cfg := driver.ConfigFromJSON([]byte(`{"proc_root": "testdata/proc"}`))
	d, err := driver.Open("load", cfg)
	if err != nil {
		log.Fatal(err)
	}
	ms, err := d.Collect(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range ms {
		fmt.Println(m.Name, m.Kind, m.Value)
	}
	// Output:
	// load.1 gauge 0.5
	// load.5 gauge 1.25
	// load.15 gauge 2
}
