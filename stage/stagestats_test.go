package stage_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

func TestStatsByStage(t *testing.T) {
	require.Nil(t, stage.StatsByStage(nil))
	require.Nil(t, stage.StatsByStage(add(1)), "a stage that counts nothing")

	alone := &memo{}
	require.Equal(t, []stage.StageStats{{Name: "#1", Stats: stage.Stats{Dropped: 1, Series: 1}}}, stage.StatsByStage(alone))
	require.Equal(t, "rate", stage.StatsByStage(stage.Named("rate", alone))[0].Name)

	first, last := &memo{}, &memo{}
	inner := stage.Chain(stage.Named("inner", &memo{}))
	c := stage.Chain(stage.Named("first", first), add(1), last, stage.Named("nested", inner))
	_, err := c.Process(context.Background(), []meter.Measurement{gauge("a", 1), gauge("b", 2)}, nil)
	require.NoError(t, err)
	got := stage.StatsByStage(c)
	require.Len(t, got, 3, "the Func counts nothing")
	require.Equal(t, "first", got[0].Name)
	require.Equal(t, "#3", got[1].Name, "an unnamed stage goes by its position")
	require.Equal(t, "nested", got[2].Name, "a nested chain is one stage")
	require.Equal(t, first.Stats(), got[0].Stats)
	require.Equal(t, last.Stats(), got[1].Stats)
	require.Equal(t, uint64(2), got[2].Stats.In, "the nested chain's own input")
	require.Equal(t, uint64(1), got[2].Stats.Series, "and its stages' sums")

	// Two stateless stages of one name: the second goes by its position too.
	twice := stage.Chain(stage.Named("select", &counting{}), stage.Named("select", &counting{}))
	names := []string{}
	for _, s := range stage.StatsByStage(twice) {
		names = append(names, s.Name)
	}
	require.Equal(t, []string{"select", "select#2"}, names)

	// Through a wrapper, as a composer sees a named chain.
	require.Equal(t, got, stage.StatsByStage(stage.Named("all", c)))
}

// counting is a stateless stage that counts.
type counting struct{ stage.Counters }

func (c *counting) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	c.Count(stage.Stats{In: uint64(len(in)), Out: uint64(len(in))})
	return append(out, in...), nil
}
