package registry_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/registry"
)

type thing interface{ Name() string }

type named string

func (n named) Name() string { return string(n) }

func TestRegistry(t *testing.T) {
	r := registry.New[thing]("thing")
	_, err := r.Open("a", meter.Config{})
	require.EqualError(t, err, `thing: unknown thing "a" (forgotten import?); registered: none`)
	r.Register("b", func(meter.Config) (thing, error) { return named("b"), nil })
	r.Register("a", func(meter.Config) (thing, error) { return nil, nil })
	r.Register("c", func(meter.Config) (thing, error) { return nil, errors.New("bad setting") })
	require.Equal(t, []string{"a", "b", "c"}, r.Names())
	v, err := r.Open("b", meter.Config{})
	require.NoError(t, err)
	require.Equal(t, "b", v.Name())
	_, err = r.Open("a", meter.Config{})
	require.EqualError(t, err, `thing "a": factory returned a nil thing`)
	_, err = r.Open("c", meter.Config{})
	require.EqualError(t, err, `thing "c": bad setting`)
	_, err = r.Open("d", meter.Config{})
	require.EqualError(t, err, `thing: unknown thing "d" (forgotten import?); registered: a, b, c`)

	require.PanicsWithValue(t, `thing: Register called twice for thing "b"`, func() { r.Register("b", func(meter.Config) (thing, error) { return nil, nil }) })
	require.PanicsWithValue(t, `thing: Register: malformed thing name "B"`, func() { r.Register("B", func(meter.Config) (thing, error) { return nil, nil }) })
	require.PanicsWithValue(t, `thing: Register: nil factory for thing "e"`, func() { r.Register("e", nil) })
}
