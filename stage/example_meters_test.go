package stage_test

import (
	"fmt"

	"github.com/meterkit/meter/stage"
)

// Patterns as Ceilometer's `meters:` writes them: exclusions first; a list
// of exclusions only selects everything else.
func ExampleCompileMeters() {
	names := []string{"cpu.util", "cpu.time", "disk.read.bytes", "disk.read.latency", "memory.used"}
	for _, patterns := range [][]string{
		{"cpu.*"},
		{"!cpu.*"},
		{"disk.*", "!disk.*.latency"},
		{"*", "!memory.*", "!cpu.time"},
	} {
		m, err := stage.CompileMeters(patterns...)
		if err != nil {
			fmt.Println(err)
			return
		}
		var kept []string
		for _, n := range names {
			if m.Match(n) {
				kept = append(kept, n)
			}
		}
		fmt.Printf("%q: %v\n", patterns, kept)
	}
	// Output:
	// ["cpu.*"]: [cpu.util cpu.time]
	// ["!cpu.*"]: [disk.read.bytes disk.read.latency memory.used]
	// ["disk.*" "!disk.*.latency"]: [disk.read.bytes]
	// ["*" "!memory.*" "!cpu.time"]: [cpu.util disk.read.bytes disk.read.latency]
}
