package meter_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
)

func valid() meter.Measurement {
	return meter.Measurement{
		Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12.5,
		Time: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), Host: "web1",
		ResourceID: "cpu0", Labels: []meter.Label{{Key: "mode", Value: "user"}},
	}
}

func TestValidateAccepts(t *testing.T) {
	m := valid()
	require.NoError(t, m.Validate())
	m.Labels = nil
	m.Unit = ""
	m.Value = -1e300
	require.NoError(t, m.Validate())
	// The ends of the range, in UTC whatever the time's location.
	for _, at := range []time.Time{
		time.Unix(0, 0),
		time.Date(2261, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2262, 1, 1, 0, 30, 0, 0, time.FixedZone("+01", 3600)), // 2261 in UTC
	} {
		m.Time = at
		require.NoError(t, m.Validate(), "%v", at)
	}
}

func TestValidateRejects(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	labels := func(n int) []meter.Label {
		ls := make([]meter.Label, n)
		for i := range ls {
			ls[i] = meter.Label{Key: "k" + strings.Repeat("i", i), Value: "v"}
		}
		return ls
	}
	cases := []struct {
		name  string
		edit  func(m *meter.Measurement)
		field string
	}{
		{"empty name", func(m *meter.Measurement) { m.Name = "" }, "Name"},
		{"long name", func(m *meter.Measurement) { m.Name = long(meter.MaxNameLen + 1) }, "Name"},
		{"bad utf8 name", func(m *meter.Measurement) { m.Name = "cpu\xff" }, "Name"},
		{"unspecified kind", func(m *meter.Measurement) { m.Kind = meter.KindUnspecified }, "Kind"},
		{"unknown kind", func(m *meter.Measurement) { m.Kind = 9 }, "Kind"},
		{"long unit", func(m *meter.Measurement) { m.Unit = long(meter.MaxUnitLen + 1) }, "Unit"},
		{"NaN", func(m *meter.Measurement) { m.Value = math.NaN() }, "Value"},
		{"+Inf", func(m *meter.Measurement) { m.Value = math.Inf(1) }, "Value"},
		{"-Inf", func(m *meter.Measurement) { m.Value = math.Inf(-1) }, "Value"},
		{"zero time", func(m *meter.Measurement) { m.Time = time.Time{} }, "Time"},
		{"time before 1970", func(m *meter.Measurement) { m.Time = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }, "Time"},
		{"time just before 1970", func(m *meter.Measurement) { m.Time = time.Unix(0, -1) }, "Time"},
		{"time 1970 east of UTC", func(m *meter.Measurement) {
			m.Time = time.Date(1970, 1, 1, 0, 30, 0, 0, time.FixedZone("+01", 3600)) // 1969 in UTC
		}, "Time"},
		{"time in 2262", func(m *meter.Measurement) { m.Time = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC) }, "Time"},
		{"long host", func(m *meter.Measurement) { m.Host = long(meter.MaxIDLen + 1) }, "Host"},
		{"long resource", func(m *meter.Measurement) { m.ResourceID = long(meter.MaxIDLen + 1) }, "ResourceID"},
		{"long project", func(m *meter.Measurement) { m.ProjectID = long(meter.MaxIDLen + 1) }, "ProjectID"},
		{"long user", func(m *meter.Measurement) { m.UserID = long(meter.MaxIDLen + 1) }, "UserID"},
		{"too many labels", func(m *meter.Measurement) { m.Labels = labels(meter.MaxLabels + 1) }, "Labels"},
		{"empty label key", func(m *meter.Measurement) { m.Labels = []meter.Label{{Key: "a"}, {Key: ""}} }, "Labels[1].Key"},
		{"long label key", func(m *meter.Measurement) { m.Labels = []meter.Label{{Key: long(meter.MaxLabelKeyLen + 1)}} }, "Labels[0].Key"},
		{"long label value", func(m *meter.Measurement) {
			m.Labels = []meter.Label{{Key: "k", Value: long(meter.MaxLabelValueLen + 1)}}
		}, "Labels[0].Value"},
		{"duplicate label", func(m *meter.Measurement) { m.Labels = []meter.Label{{Key: "a"}, {Key: "b"}, {Key: "a"}} }, "Labels[2].Key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := valid()
			c.edit(&m)
			err := m.Validate()
			require.Error(t, err)
			require.True(t, errors.Is(err, meter.ErrInvalid))
			var fe *meter.FieldError
			require.True(t, errors.As(err, &fe))
			require.Equal(t, c.field, fe.Field)
			require.Contains(t, err.Error(), c.field)
		})
	}
}

func TestValidateDoesNotAllocate(t *testing.T) {
	m := valid()
	allocs := testing.AllocsPerRun(100, func() {
		if m.Validate() != nil {
			t.Fatal("invalid")
		}
	})
	require.Zero(t, allocs)
}

func TestKindText(t *testing.T) {
	for _, k := range []meter.Kind{meter.Gauge, meter.Cumulative, meter.Delta} {
		b, err := k.MarshalText()
		require.NoError(t, err)
		var got meter.Kind
		require.NoError(t, got.UnmarshalText(b))
		require.Equal(t, k, got)
	}
	_, err := meter.ParseKind("counter")
	require.ErrorContains(t, err, `unknown kind "counter"`)
	_, err = meter.KindUnspecified.MarshalText()
	require.Error(t, err)
	require.Equal(t, "kind(7)", meter.Kind(7).String())
}

func TestLabel(t *testing.T) {
	m := valid()
	v, ok := m.Label("mode")
	require.True(t, ok)
	require.Equal(t, "user", v)
	_, ok = m.Label("nope")
	require.False(t, ok)
}
