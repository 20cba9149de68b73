package driver_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

func nop(driver.Config) (driver.Driver, error) {
	return driver.Func(func(context.Context) ([]meter.Measurement, error) { return nil, nil }), nil
}

func TestRegistry(t *testing.T) {
	r := driver.NewRegistry()
	r.Register("b", nop)
	r.Register("a.x_y-z", nop)
	require.Equal(t, []string{"a.x_y-z", "b"}, r.Drivers())

	_, err := r.Lookup("b")
	require.NoError(t, err)
	_, err = r.Lookup("nope")
	require.EqualError(t, err, `driver: unknown driver "nope" (forgotten import?); registered: a.x_y-z, b`)
	_, err = r.Open("nope", driver.Config{})
	require.ErrorContains(t, err, "forgotten import?")

	require.PanicsWithValue(t, `driver: Register called twice for driver "b"`, func() { r.Register("b", nop) })
	require.PanicsWithValue(t, `driver: Register: nil factory for driver "c"`, func() { r.Register("c", nil) })
	for _, bad := range []string{"", "Upper", "9lives", "has space", "x/y", string(make([]byte, 64))} {
		require.Panics(t, func() { r.Register(bad, nop) }, "name %q", bad)
	}
}

func TestOpenFactoryErrors(t *testing.T) {
	r := driver.NewRegistry()
	r.Register("fails", func(driver.Config) (driver.Driver, error) { return nil, context.Canceled })
	r.Register("nil", func(driver.Config) (driver.Driver, error) { return nil, nil })
	_, err := r.Open("fails", driver.Config{})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, `driver "fails"`)
	_, err = r.Open("nil", driver.Config{})
	require.ErrorContains(t, err, "nil driver")
}

type cfg struct {
	Path    string  `json:"path"`
	Scale   float64 `json:"scale"`
	Enabled bool    `json:"enabled"`
}

func TestConfigDecode(t *testing.T) {
	c := cfg{Path: "/proc", Scale: 1}
	require.NoError(t, driver.Config{}.Decode(&c))
	require.Equal(t, cfg{Path: "/proc", Scale: 1}, c, "zero config keeps defaults")

	require.NoError(t, driver.ConfigFromJSON([]byte(`{"scale": 2.5}`)).Decode(&c))
	require.Equal(t, cfg{Path: "/proc", Scale: 2.5}, c, "missing fields keep defaults")

	err := driver.ConfigFromJSON([]byte(`{"sclae": 2}`)).Decode(&c)
	require.ErrorContains(t, err, `unknown field "sclae"`)
	err = driver.ConfigFromJSON([]byte(`{"scale": "x"}`)).Decode(&c)
	require.ErrorContains(t, err, "config: json: cannot unmarshal")
	err = driver.ConfigFromJSON([]byte(`{"scale": 1} {}`)).Decode(&c)
	require.ErrorContains(t, err, "trailing data")

	conf, err := driver.ConfigFrom(map[string]any{"path": "/x"})
	require.NoError(t, err)
	require.NoError(t, conf.Decode(&c))
	require.Equal(t, "/x", c.Path)
}

func TestDuration(t *testing.T) {
	var c struct {
		Timeout driver.Duration `json:"timeout"`
	}
	cfg := driver.ConfigFromJSON([]byte(`{"timeout": "1m30s"}`))
	require.NoError(t, cfg.Decode(&c))
	require.Equal(t, 90*time.Second, time.Duration(c.Timeout))
	b, err := json.Marshal(c)
	require.NoError(t, err)
	require.JSONEq(t, `{"timeout": "1m30s"}`, string(b))

	err = driver.ConfigFromJSON([]byte(`{"timeout": 5}`)).Decode(&c)
	require.ErrorContains(t, err, `duration: want a string like "10s", got 5`)
	err = driver.ConfigFromJSON([]byte(`{"timeout": "soon"}`)).Decode(&c)
	require.ErrorContains(t, err, `invalid duration "soon"`)
}
