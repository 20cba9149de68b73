package rate_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	_ "github.com/meterkit/meter/stage/delta"
	"github.com/meterkit/meter/stage/stagefile"
)

// The configurations the docs give, written as an agent's -stages file.
func TestRateFromStagesFile(t *testing.T) {
	specs, err := stagefile.Parse("stages.yaml", []byte(`
- type: rate
  meters: ["cpu"]
  as: cpu_util
  percent_of: vcpus
- type: rate
  name: disk-rates
  meters: ["disk.*.bytes"]
  as: $(name).rate
  max_gap: 5m
- type: delta
  meters: ["disk.*.bytes"]
  as: $(name).delta
  drop_input: true
`))
	require.NoError(t, err)
	c, err := stagefile.Open("stages.yaml", specs)
	require.NoError(t, err)
	batch := func(sec, v float64) []meter.Measurement {
		return []meter.Measurement{
			counter("cpu", "ns", sec, v*1e9, meter.Label{Key: "vcpus", Value: "4"}),
			counter("disk.read.bytes", "B", sec, v),
		}
	}
	_, err = c.Process(context.Background(), batch(0, 100), nil)
	require.NoError(t, err)
	out, err := c.Process(context.Background(), batch(10, 120), nil)
	require.NoError(t, err)
	var got []string
	for _, m := range out {
		got = append(got, m.Name+" "+m.Unit+" "+m.Kind.String())
	}
	require.Equal(t, []string{"cpu ns cumulative", "cpu_util % gauge", "disk.read.bytes.delta B delta", "disk.read.bytes.rate B/s gauge"}, got,
		"delta replaces its input in place, the rate follows it")
	require.Equal(t, 50.0, out[1].Value, "2 s/s of 4 vCPUs")
	require.Equal(t, 20.0, out[2].Value)
	require.Equal(t, 2.0, out[3].Value)

	_, err = stagefile.Open("bad.yaml", mustParse(t, "- type: rate\n  meters: [cpu]\n  as: x\n  percent_of: [1]\n"))
	require.ErrorContains(t, err, "percent_of")
}

func mustParse(t *testing.T, s string) []stagefile.Spec {
	t.Helper()
	specs, err := stagefile.Parse("bad.yaml", []byte(s))
	require.NoError(t, err)
	return specs
}
