package notification

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
)

func defaults(t *testing.T) *Definitions {
	t.Helper()
	ds, err := ParseDefinitions(DefaultDefinitions())
	require.NoError(t, err)
	return ds
}

func measureFile(t *testing.T, ds *Definitions, name string) ([]meter.Measurement, int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	n, err := Decode(b)
	require.NoError(t, err)
	ms, matched, err := ds.Measure(n, nil)
	require.NoError(t, err)
	for i := range ms {
		require.NoError(t, ms[i].Validate(), "measurement %d", i)
	}
	return ms, matched
}

func byName(ms []meter.Measurement) map[string]meter.Measurement {
	out := map[string]meter.Measurement{}
	for _, m := range ms {
		out[m.Name] = m
	}
	return out
}

func TestNovaInstanceExists(t *testing.T) {
	ms, matched := measureFile(t, defaults(t), "nova-compute.instance.exists.json")
	require.Equal(t, 4, matched)
	require.Len(t, ms, 4)
	got := byName(ms)
	at := time.Date(2026, 11, 30, 10, 0, 3, 251743000, time.UTC)
	for name, want := range map[string]struct {
		unit  string
		value float64
	}{"instance": {"instance", 1}, "memory": {"MB", 2048}, "vcpus": {"vcpu", 1}, "disk.root.size": {"GB", 20}} {
		m, ok := got[name]
		require.True(t, ok, name)
		require.Equal(t, meter.Gauge, m.Kind, name)
		require.Equal(t, want.unit, m.Unit, name)
		require.Equal(t, want.value, m.Value, name)
		require.Equal(t, "c7a1e5b2-3f4d-4e6a-8b9c-0d1e2f3a4b5c", m.ResourceID, name)
		require.Equal(t, "8a4c3d2e1f0b4a9c8d7e6f5a4b3c2d1e", m.ProjectID, name)
		require.Equal(t, "1f2e3d4c5b6a4978a1b2c3d4e5f60718", m.UserID, name)
		require.Equal(t, "compute-01", m.Host, name)
		require.True(t, m.Time.Equal(at), "%s: %v", name, m.Time)
		require.Equal(t, time.UTC, m.Time.Location())
		require.Equal(t, []meter.Label{
			{Key: "availability_zone", Value: "nova"},
			{Key: "display_name", Value: "web-1"},
			{Key: "flavor_id", Value: "2"},
			{Key: "flavor_name", Value: "m1.small"},
			{Key: "gnocchi.resource_type", Value: "instance"}, // a constant label
			{Key: "image_ref", Value: "0e4b1c6a-2d3f-4a5b-9c8d-7e6f5a4b3c2d"},
			{Key: "state", Value: "active"},
			{Key: LabelEventType, Value: "compute.instance.exists"},
			{Key: LabelMessageID, Value: "5f7b1c2e-8a3d-4e6f-9b0a-1c2d3e4f5a6b"},
		}, m.Labels, name)
	}
}

func TestCinderVolumeExists(t *testing.T) {
	ms, matched := measureFile(t, defaults(t), "cinder-volume.exists.json")
	require.Equal(t, 1, matched)
	require.Len(t, ms, 1)
	m := ms[0]
	require.Equal(t, "volume.size", m.Name)
	require.Equal(t, "GB", m.Unit)
	require.Equal(t, 40.0, m.Value)
	require.Equal(t, "e2d4f6a8-1b3c-4d5e-8f7a-9b0c1d2e3f4a", m.ResourceID)
	require.Equal(t, "8a4c3d2e1f0b4a9c8d7e6f5a4b3c2d1e", m.ProjectID)
	require.Equal(t, "block-01@lvm#lvm", m.Host)
	require.True(t, m.Time.Equal(time.Date(2026, 11, 30, 10, 0, 5, 118022000, time.UTC)))
	status, _ := m.Label("status")
	require.Equal(t, "in-use", status)
	vt, _ := m.Label("volume_type")
	require.Equal(t, "6c3b2a1d-0e9f-4a8b-b7c6-5d4e3f2a1b0c", vt)
	id, _ := m.Label(LabelMessageID)
	require.Equal(t, "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a", id)
	typ, _ := m.Label("gnocchi.resource_type")
	require.Equal(t, "volume", typ)
}

func TestGlanceImageUploadLegacy(t *testing.T) {
	ms, matched := measureFile(t, defaults(t), "glance-image.upload.json") // no oslo envelope
	require.Equal(t, 1, matched)
	require.Len(t, ms, 1)
	m := ms[0]
	require.Equal(t, "image.size", m.Name)
	require.Equal(t, "B", m.Unit)
	require.Equal(t, 349372416.0, m.Value)
	require.Equal(t, "0e4b1c6a-2d3f-4a5b-9c8d-7e6f5a4b3c2d", m.ResourceID)
	require.Equal(t, "3e2d1c0b9a8f4e7d6c5b4a3928171605", m.ProjectID)
	require.Empty(t, m.UserID)
	require.Empty(t, m.Host, "left to the agent")
	df, _ := m.Label("disk_format")
	require.Equal(t, "qcow2", df)
	typ, _ := m.Label("gnocchi.resource_type")
	require.Equal(t, "image", typ)
}

// TestConstantLabels: constant_labels are the same on every measurement
// of a definition, sorted in among the labels read from the notification,
// whether or not the notification has anything else.
func TestConstantLabels(t *testing.T) {
	ds, err := ParseDefinitions([]byte(`
metric:
  - name: switch.port.up
    event_type: switch.port.*
    type: gauge
    volume: 1
    resource_id: $.payload.port
    labels: {port: $.payload.port, speed: $.payload.speed}
    constant_labels: {gnocchi.resource_type: switch_port, site: "lab 1"}
`))
	require.NoError(t, err)
	n := map[string]any{"event_type": "switch.port.up", "message_id": "m-9", "timestamp": "2026-11-30 10:00:00",
		"payload": map[string]any{"port": "ge-0/0/1"}}
	ms, matched, err := ds.Measure(n, nil)
	require.NoError(t, err)
	require.Equal(t, 1, matched)
	require.Len(t, ms, 1)
	require.Equal(t, []meter.Label{{Key: "gnocchi.resource_type", Value: "switch_port"}, {Key: "port", Value: "ge-0/0/1"},
		{Key: "site", Value: "lab 1"}, {Key: LabelEventType, Value: "switch.port.up"}, {Key: LabelMessageID, Value: "m-9"}}, ms[0].Labels)

	// The shipped definitions: every measurement names its Gnocchi type.
	for _, f := range []struct{ file, typ string }{{"nova-compute.instance.exists.json", "instance"},
		{"cinder-volume.exists.json", "volume"}, {"glance-image.upload.json", "image"}} {
		ms, _ := measureFile(t, defaults(t), f.file)
		require.NotEmpty(t, ms)
		for _, m := range ms {
			typ, ok := m.Label("gnocchi.resource_type")
			require.True(t, ok, "%s: %s", f.file, m.Name)
			require.Equal(t, f.typ, typ, "%s: %s", f.file, m.Name)
		}
	}
}

func TestEventTypePatterns(t *testing.T) {
	ds := defaults(t)
	for et, want := range map[string]int{
		"compute.instance.create.end":   4,
		"compute.instance.delete.end":   4,
		"compute.instance.create.start": 0, // excluded, as in Ceilometer
		"compute.instance.update":       0,
		"volume.create.end":             1,
		"volume.exists":                 1,
		"image.upload":                  1,
		"identity.project.created":      0,
	} {
		n := map[string]any{"event_type": et, "payload": map[string]any{}}
		_, matched, _ := ds.Measure(n, nil)
		require.Equal(t, want, matched, et)
	}
}

func TestMissingFieldsSkipTheMeter(t *testing.T) {
	n := map[string]any{"event_type": "volume.exists", "message_id": "m1", "timestamp": "2026-11-30 10:00:00",
		"payload": map[string]any{"volume_id": "v1"}} // no size
	ms, matched, err := defaults(t).Measure(n, nil)
	require.Equal(t, 1, matched)
	require.Empty(t, ms)
	require.ErrorContains(t, err, "volume.size")
	require.ErrorContains(t, err, "volume")

	n["payload"] = map[string]any{"size": "12"} // a string number, but no volume_id
	ms, _, err = defaults(t).Measure(n, nil)
	require.Empty(t, ms)
	require.ErrorContains(t, err, "resource_id")

	n["payload"] = map[string]any{"size": "12", "volume_id": "v1"}
	ms, _, err = defaults(t).Measure(n, nil)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, 12.0, ms[0].Value)
}

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 11, 30, 10, 0, 0, 123456000, time.UTC)
	for _, s := range []string{"2026-11-30 10:00:00.123456", "2026-11-30T10:00:00.123456",
		"2026-11-30T10:00:00.123456Z", "2026-11-30T11:00:00.123456+01:00", "2026-11-30 10:00:00.123456+00:00"} {
		got, err := ParseTime(s)
		require.NoError(t, err, s)
		require.True(t, got.Equal(want), "%s: %v", s, got)
		require.Equal(t, time.UTC, got.Location(), s)
	}
	_, err := ParseTime("30/11/2026")
	require.Error(t, err)
}

func TestDecodeMalformed(t *testing.T) {
	for name, body := range map[string]string{
		"not json":          "garbage",
		"array":             "[1,2]",
		"null":              "null",
		"trailing":          `{"event_type":"x"} {}`,
		"no event type":     `{"payload":{}}`,
		"oslo not a string": `{"oslo.version":"2.0","oslo.message":{"event_type":"x"}}`,
		"oslo bad inner":    `{"oslo.version":"2.0","oslo.message":"{"}`,
		"oslo version 1":    `{"oslo.version":"1.0","oslo.message":"{}"}`,
	} {
		_, err := Decode([]byte(body))
		require.ErrorIs(t, err, ErrMalformed, name)
	}
}

func TestParseDefinitionsErrors(t *testing.T) {
	for name, y := range map[string]string{
		"empty":              "metric: []",
		"unknown key":        "metric: [{name: a, event_type: x, type: gauge, volume: 1, resource_id: $.a, colour: red}]",
		"no name":            "metric: [{event_type: x, type: gauge, volume: 1, resource_id: $.a}]",
		"bad kind":           "metric: [{name: a, event_type: x, type: counter, volume: 1, resource_id: $.a}]",
		"bad path":           "metric: [{name: a, event_type: x, type: gauge, volume: '$.[', resource_id: $.a}]",
		"bad volume":         "metric: [{name: a, event_type: x, type: gauge, volume: size, resource_id: $.a}]",
		"no resource":        "metric: [{name: a, event_type: x, type: gauge, volume: 1}]",
		"only exclude":       "metric: [{name: a, event_type: '!x', type: gauge, volume: 1, resource_id: $.a}]",
		"reserved":           "metric: [{name: a, event_type: x, type: gauge, volume: 1, resource_id: $.a, labels: {message_id: $.b}}]",
		"meterkit.":          "metric: [{name: a, event_type: x, type: gauge, volume: 1, resource_id: $.a, labels: {meterkit.state: $.b}}]",
		"const reserved":     "metric: [{name: a, event_type: x, type: gauge, volume: 1, resource_id: $.a, constant_labels: {event_type: x}}]",
		"const meterkit.":    "metric: [{name: a, event_type: x, type: gauge, volume: 1, resource_id: $.a, constant_labels: {meterkit.state: ok}}]",
		"const and path":     "metric: [{name: a, event_type: x, type: gauge, volume: 1, resource_id: $.a, labels: {k: $.b}, constant_labels: {k: v}}]",
		"const empty key":    "metric: [{name: a, event_type: x, type: gauge, volume: 1, resource_id: $.a, constant_labels: {'': v}}]",
		"const not a string": "metric: [{name: a, event_type: x, type: gauge, volume: 1, resource_id: $.a, constant_labels: {k: [1]}}]",
	} {
		_, err := ParseDefinitions([]byte(y))
		require.Error(t, err, name)
	}
}

func FuzzDecodeAndMeasure(f *testing.F) {
	for _, name := range []string{"nova-compute.instance.exists.json", "cinder-volume.exists.json", "glance-image.upload.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(`{"oslo.version":"2.0","oslo.message":"{\"event_type\":\"volume.exists\",\"payload\":{\"size\":1e400}}"}`))
	ds, err := ParseDefinitions(DefaultDefinitions())
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Decode(b)
		if err != nil {
			return
		}
		ms, _, _ := ds.Measure(n, nil)
		for i := range ms {
			if ms[i].Time.IsZero() {
				ms[i].Time = time.Now()
			}
			if err := ms[i].Validate(); err != nil && ms[i].Time.Year() >= 1970 && ms[i].Time.Year() <= 2261 {
				// Only over-long strings from the message may fail; nothing may be NaN or an unknown kind.
				require.NotContains(t, err.Error(), "NaN")
				require.NotContains(t, err.Error(), "Kind")
			}
		}
	})
}
