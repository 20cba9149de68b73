package selectstage_test

import (
	"context"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/selectstage"
	"github.com/meterkit/meter/stage/stagetest"
)

func cfg(t *testing.T, patterns ...string) meter.Config {
	c, err := meter.ConfigFrom(map[string]any{"meters": patterns})
	require.NoError(t, err)
	return c
}

func names(ms []meter.Measurement) map[string]int {
	n := map[string]int{}
	for _, m := range ms {
		n[m.Name]++
	}
	return n
}

// Ceilometer-style lists on the sample host (2 CPUs, 2 disks): what is kept.
func TestSelectCeilometerLists(t *testing.T) {
	in := stagetest.Sample()[0]
	for _, tc := range []struct {
		meters []string
		want   map[string]int
	}{
		{[]string{"*"}, names(in)},
		{[]string{"cpu.util"}, map[string]int{"cpu.util": 3}},
		{[]string{"memory.*", "cpu.util"}, map[string]int{"cpu.util": 3, "memory.total": 1, "memory.used": 1, "memory.available": 1}},
		{[]string{"!cpu.*", "!memory.*"}, map[string]int{"disk.read.bytes": 2, "disk.write.bytes": 2, "disk.io.time": 2}},
		{[]string{"*", "!disk.*", "!cpu.time", "!memory.total"}, map[string]int{"cpu.util": 3, "memory.used": 1, "memory.available": 1}},
		{[]string{"disk.*", "!disk.*.bytes"}, map[string]int{"disk.io.time": 2}},
		{[]string{"*.bytes"}, map[string]int{"disk.read.bytes": 2, "disk.write.bytes": 2}},
		{[]string{"nothing.here"}, map[string]int{}},
	} {
		s, err := stage.Open("select", cfg(t, tc.meters...))
		require.NoError(t, err)
		out, err := s.Process(context.Background(), in, nil)
		require.NoError(t, err)
		require.Equal(t, tc.want, names(out), "meters %q", tc.meters)
		st := s.(stage.StatsReporter).Stats()
		require.Equal(t, uint64(len(in)), st.In)
		require.Equal(t, uint64(len(out)), st.Out)
		require.Equal(t, uint64(len(in)-len(out)), st.Filtered)
	}
}

func TestSelectKeepsOrderAndLabels(t *testing.T) {
	in := stagetest.Sample()[0]
	s, err := selectstage.New(selectstage.Config{Meters: stage.MustCompileMeters("!memory.*")})
	require.NoError(t, err)
	out, err := s.Process(context.Background(), in, nil)
	require.NoError(t, err)
	j := 0
	for i := range in {
		if in[i].Name[:3] == "mem" {
			continue
		}
		require.Equal(t, in[i], out[j])
		if len(in[i].Labels) > 0 {
			require.Same(t, &in[i].Labels[0], &out[j].Labels[0], "labels pass as the same slice")
		}
		j++
	}
}

func TestSelectSettings(t *testing.T) {
	_, err := stage.Open("select", meter.Config{})
	require.EqualError(t, err, `stage "select": select: meters: required (a list of patterns such as ["cpu.*", "!cpu.time"])`)
	_, err = stage.Open("select", meter.ConfigFromJSON([]byte(`{"meter": ["x"]}`)))
	require.ErrorContains(t, err, `unknown field "meter"`)
	_, err = stage.Open("select", cfg(t, "disk[0]"))
	require.ErrorContains(t, err, "character classes")
}

func TestSelectConformance(t *testing.T) {
	stagetest.Run(t, selectstage.Open, cfg(t, "cpu.*", "!cpu.time"))
	stagetest.Run(t, selectstage.Open, cfg(t, "!disk.*"))
}

// A name seen before leaves the stage as the string of the batch it was
// first seen in, so that the stages after it compare it at once: in place
// and not.
func TestSelectGivesTheNamesItHolds(t *testing.T) {
	fresh := func() []meter.Measurement {
		ms := stagetest.Sample()[0]
		for i := range ms {
			ms[i].Name = strings.Clone(ms[i].Name)
		}
		return ms
	}
	for _, inPlace := range []bool{false, true} {
		s, err := selectstage.New(selectstage.Config{Meters: stage.MustCompileMeters("!memory.*")})
		require.NoError(t, err)
		run := func(in []meter.Measurement) []meter.Measurement {
			if inPlace {
				out, err := s.ProcessInPlace(context.Background(), in)
				require.NoError(t, err)
				return out
			}
			out, err := s.Process(context.Background(), in, nil)
			require.NoError(t, err)
			return out
		}
		first := run(fresh())
		second := fresh()
		want := append([]meter.Measurement(nil), second...)
		out := run(second)
		require.Len(t, out, len(first))
		j := 0
		for _, m := range want {
			if strings.HasPrefix(m.Name, "memory.") {
				continue
			}
			require.Equal(t, m, out[j], "in place %v: the measurement, unchanged in value", inPlace)
			require.Same(t, unsafe.StringData(first[j].Name), unsafe.StringData(out[j].Name),
				"in place %v: %s: the first batch's string", inPlace, m.Name)
			j++
		}
	}
}
