package stage_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

// Pattern lists as Ceilometer's pipeline.yaml writes them, and what they
// select (Ceilometer's rule: exclusions first, then inclusions; a list of
// exclusions only selects everything else).
func TestMetersCeilometerLists(t *testing.T) {
	names := []string{"cpu", "cpu.util", "cpu_util", "disk.read.bytes", "disk.write.bytes", "disk.device.read.bytes",
		"disk.read.latency", "memory.usage", "memory", "network.incoming.bytes", "instance:m1.tiny", "héhé.x"}
	for _, tc := range []struct {
		patterns []string
		want     []string
	}{
		{[]string{"*"}, names},
		{nil, names},
		{[]string{"cpu"}, []string{"cpu"}},
		{[]string{"cpu", "cpu_util"}, []string{"cpu", "cpu_util"}},
		{[]string{"disk.*"}, []string{"disk.read.bytes", "disk.write.bytes", "disk.device.read.bytes", "disk.read.latency"}},
		{[]string{"!disk.*"}, []string{"cpu", "cpu.util", "cpu_util", "memory.usage", "memory", "network.incoming.bytes", "instance:m1.tiny", "héhé.x"}},
		{[]string{"!disk.*", "*"}, []string{"cpu", "cpu.util", "cpu_util", "memory.usage", "memory", "network.incoming.bytes", "instance:m1.tiny", "héhé.x"}},
		{[]string{"!cpu", "!memory*", "!disk.*", "!network.*", "!instance:*"}, []string{"cpu.util", "cpu_util", "héhé.x"}},
		{[]string{"*.bytes"}, []string{"disk.read.bytes", "disk.write.bytes", "disk.device.read.bytes", "network.incoming.bytes"}},
		{[]string{"disk.*.bytes"}, []string{"disk.read.bytes", "disk.write.bytes", "disk.device.read.bytes"}},
		{[]string{"disk.????.bytes"}, []string{"disk.read.bytes"}},
		{[]string{"cpu?util"}, []string{"cpu.util", "cpu_util"}},
		{[]string{"h?h?.*"}, []string{"héhé.x"}},
		{[]string{"instance:*"}, []string{"instance:m1.tiny"}},
		// A mix: included and not excluded.
		{[]string{"disk.*", "!disk.*.latency"}, []string{"disk.read.bytes", "disk.write.bytes", "disk.device.read.bytes"}},
		{[]string{"disk.*", "!disk.device.*", "cpu"}, []string{"cpu", "disk.read.bytes", "disk.write.bytes", "disk.read.latency"}},
		{[]string{"*", "!*"}, nil},
	} {
		m, err := stage.CompileMeters(tc.patterns...)
		require.NoError(t, err, tc.patterns)
		var got []string
		for _, n := range names {
			if m.Match(n) {
				got = append(got, n)
			}
		}
		require.ElementsMatch(t, tc.want, got, "patterns %q", tc.patterns)
	}
}

func TestMetersErrorsAndJSON(t *testing.T) {
	for _, bad := range [][]string{{""}, {"!"}, {"disk.[rw]*"}} {
		_, err := stage.CompileMeters(bad...)
		require.Error(t, err, bad)
	}
	_, err := stage.CompileMeters("cpu", "disk[0]")
	require.EqualError(t, err, `stage: meters: pattern "disk[0]": character classes ([...]) are not supported; use * and ?`)

	var c struct {
		Meters stage.Meters `json:"meters"`
	}
	require.NoError(t, meter.ConfigFromJSON([]byte(`{"meters": ["disk.*", "!disk.io.*"]}`)).Decode(&c))
	require.True(t, c.Meters.Match("disk.read.bytes"))
	require.False(t, c.Meters.Match("disk.io.time"))
	require.False(t, c.Meters.Match("cpu"))
	require.Equal(t, []string{"disk.*", "!disk.io.*"}, c.Meters.Patterns())
	b, err := json.Marshal(c)
	require.NoError(t, err)
	require.JSONEq(t, `{"meters": ["disk.*", "!disk.io.*"]}`, string(b))

	err = meter.ConfigFromJSON([]byte(`{"meters": "cpu"}`)).Decode(&c)
	require.ErrorContains(t, err, "want a list of patterns")
	err = meter.ConfigFromJSON([]byte(`{"meters": ["[x"]}`)).Decode(&c)
	require.ErrorContains(t, err, "character classes")

	var zero stage.Meters
	require.True(t, zero.IsZero())
	require.True(t, zero.Match("anything"))
	var nilm *stage.Meters
	require.True(t, nilm.Match("anything"))
}

func TestMetersMatchDoesNotAllocate(t *testing.T) {
	m := stage.MustCompileMeters("cpu.*", "disk.*.bytes", "!cpu.time", "memory", "*.util")
	allocs := testing.AllocsPerRun(100, func() {
		for _, n := range []string{"cpu.util", "disk.read.bytes", "cpu.time", "memory", "network.x"} {
			m.Match(n)
		}
	})
	require.Zero(t, allocs)
}

func BenchmarkMetersMatch(b *testing.B) {
	m := stage.MustCompileMeters("cpu.*", "disk.*.bytes", "!cpu.time", "memory.*")
	names := []string{"cpu.util", "disk.read.bytes", "cpu.time", "memory.used", "network.incoming.bytes"}
	for i := 0; b.Loop(); i++ {
		m.Match(names[i%len(names)])
	}
}
