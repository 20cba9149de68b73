package meter_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
)

func TestConfigDecode(t *testing.T) {
	type cfg struct {
		Path  string  `json:"path"`
		Scale float64 `json:"scale"`
	}
	c := cfg{Path: "/proc", Scale: 1}
	require.NoError(t, meter.Config{}.Decode(&c))
	require.Equal(t, cfg{Path: "/proc", Scale: 1}, c, "zero config keeps defaults")
	require.NoError(t, meter.ConfigFromJSON([]byte(`{"scale": 2.5}`)).Decode(&c))
	require.Equal(t, cfg{Path: "/proc", Scale: 2.5}, c, "missing fields keep defaults")
	require.EqualError(t, meter.ConfigFromJSON([]byte(`{"sclae": 2}`)).Decode(&c), `config: json: unknown field "sclae"`)
	require.ErrorContains(t, meter.ConfigFromJSON([]byte(`{"scale": 1} {}`)).Decode(&c), "trailing data")

	var d struct {
		Every meter.Duration `json:"every"`
	}
	require.NoError(t, meter.ConfigFromJSON([]byte(`{"every": "1m30s"}`)).Decode(&d))
	require.Equal(t, 90*time.Second, time.Duration(d.Every))
	b, err := json.Marshal(d)
	require.NoError(t, err)
	require.JSONEq(t, `{"every": "1m30s"}`, string(b))
}

func TestLevel(t *testing.T) {
	for l, name := range []string{meter.StateOK, meter.StateWarning, meter.StateAlert, meter.StateCritical, meter.StateStale} {
		require.Equal(t, name, meter.Level(l).String())
		got, err := meter.ParseLevel(name)
		require.NoError(t, err)
		require.Equal(t, meter.Level(l), got)
	}
	require.Equal(t, meter.Level(4), meter.LevelStale, "the value of a change to stale is 4")
	require.Equal(t, "level(9)", meter.Level(9).String())
	_, err := meter.ParseLevel("panic")
	require.ErrorContains(t, err, `unknown level "panic"`)
}
