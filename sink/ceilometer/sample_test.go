package ceilometer

import (
	"encoding/json"
	"math"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
)

func TestPyFloat(t *testing.T) {
	tenth := 0.1 // a variable, so that 0.1+0.2 is computed in float64, not exactly
	// Expected values are what CPython 3 prints for repr(float(x)).
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{100, "100.0"},
		{42.5, "42.5"},
		{tenth + 0.2, "0.30000000000000004"},
		{1e16, "1e+16"},
		{1234567890123456, "1234567890123456.0"},
		{123456789012345.6, "123456789012345.6"},
		{12345678901234567890, "1.2345678901234567e+19"},
		{0.0001, "0.0001"},
		{1e-5, "1e-05"},
		{-2.5e-7, "-2.5e-07"},
		{5e-324, "5e-324"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
	} {
		require.Equal(t, c.want, pyFloat(c.in), "pyFloat(%v)", c.in)
		// It is valid JSON, and reads back as the same float.
		var back float64
		require.NoError(t, json.Unmarshal([]byte(c.want), &back))
		require.Equal(t, c.in, back)
	}
}

func TestSignKnownVectors(t *testing.T) {
	// The expected digests were computed with Python's hmac module alone,
	// feeding the sorted, flattened name/value pairs by hand, not with this
	// package.
	s := Sample{
		CounterName:      "cpu.util",
		CounterType:      "gauge",
		CounterUnit:      "%",
		CounterVolume:    "42.5",
		ResourceID:       "host-1",
		Timestamp:        "2024-05-01T12:00:00.250000+00:00",
		ResourceMetadata: map[string]string{"zone": "eu-1", "host": "host-1"},
		Source:           "openstack",
		MessageID:        "0a8c5a3e-3b5e-4c1e-9d1f-2f0b8d1c7e11",
	}
	require.Equal(t, "d88743aeab879b36cdf7d08126a79f3e73101b4c647b9f7360737697bc432506", Sign(&s, []byte("s3cr3t")))
	// An existing signature is not part of what is signed.
	s.MessageSignature = "whatever"
	require.Equal(t, "d88743aeab879b36cdf7d08126a79f3e73101b4c647b9f7360737697bc432506", Sign(&s, []byte("s3cr3t")))

	p, u := "p1", "u1"
	s2 := Sample{
		CounterName:      "net.bytes",
		CounterType:      "cumulative",
		CounterUnit:      "B",
		CounterVolume:    json.Number(pyFloat(1e16)),
		ProjectID:        &p,
		UserID:           &u,
		ResourceID:       "eth0",
		Timestamp:        "2024-05-01T12:00:00.000000+00:00",
		ResourceMetadata: map[string]string{},
		Source:           "meterkit",
		MessageID:        "m-2",
	}
	require.Equal(t, "a1e9198e67faba1bec6a31b1b9288095cfab5b0f3e3344dd88a1522ff5cc5f72", Sign(&s2, []byte("clé")))
	require.Empty(t, Sign(&s2, nil))
}

func TestMapping(t *testing.T) {
	mp := mapping{source: "openstack"}
	at := time.Date(2024, 5, 1, 14, 0, 0, 250_000_000, time.FixedZone("CEST", 2*3600))
	for _, c := range []struct {
		kind meter.Kind
		want string
	}{{meter.Gauge, "gauge"}, {meter.Cumulative, "cumulative"}, {meter.Delta, "delta"}} {
		m := meter.Measurement{Name: "x", Kind: c.kind, Unit: "B", Value: 3, Time: at, Host: "h"}
		s, err := mp.toSample(&m, "id")
		require.NoError(t, err)
		require.Equal(t, c.want, s.CounterType)
	}

	m := meter.Measurement{
		Name: "disk.read.bytes", Kind: meter.Cumulative, Unit: "B", Value: 1024, Time: at,
		Host: "web1", ResourceID: "web1-sda", ProjectID: "proj", UserID: "user",
		Labels: []meter.Label{{Key: "device", Value: "sda"}, {Key: "host", Value: "override"}},
	}
	s, err := mp.toSample(&m, "mid")
	require.NoError(t, err)
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.JSONEq(t, `{
		"counter_name": "disk.read.bytes", "counter_type": "cumulative", "counter_unit": "B",
		"counter_volume": 1024.0, "user_id": "user", "project_id": "proj", "resource_id": "web1-sda",
		"timestamp": "2024-05-01T12:00:00.250000+00:00",
		"resource_metadata": {"device": "sda", "host": "override"},
		"source": "openstack", "message_id": "mid"}`, string(b))
	require.Contains(t, string(b), `"counter_volume":1024.0`)

	// No resource id: the host stands in; ids absent are null; the host
	// goes into resource_metadata.
	m = meter.Measurement{Name: "load", Kind: meter.Gauge, Value: 0.5, Time: at, Host: "web2"}
	s, err = mp.toSample(&m, "mid")
	require.NoError(t, err)
	b, _ = json.Marshal(s)
	require.JSONEq(t, `{
		"counter_name": "load", "counter_type": "gauge", "counter_unit": "",
		"counter_volume": 0.5, "user_id": null, "project_id": null, "resource_id": "web2",
		"timestamp": "2024-05-01T12:00:00.250000+00:00", "resource_metadata": {"host": "web2"},
		"source": "openstack", "message_id": "mid"}`, string(b))

	// Neither: refused.
	m.Host = ""
	_, err = mp.toSample(&m, "mid")
	require.ErrorIs(t, err, errNoResource)

	// The v2 form has no message_id and leaves absent ids out.
	m.Host = "web2"
	v, err := mp.toV2(&m)
	require.NoError(t, err)
	b, _ = json.Marshal(v)
	require.JSONEq(t, `{
		"counter_name": "load", "counter_type": "gauge", "counter_unit": "", "counter_volume": 0.5,
		"resource_id": "web2", "timestamp": "2024-05-01T12:00:00.250000+00:00",
		"resource_metadata": {"host": "web2"}, "source": "openstack"}`, string(b))
}

func TestEnvelope(t *testing.T) {
	mp := mapping{source: "openstack"}
	m := meter.Measurement{Name: "x", Kind: meter.Gauge, Value: 1, Time: time.Unix(0, 0), Host: "h"}
	s, err := mp.toSample(&m, newUUID())
	require.NoError(t, err)
	now := time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC)
	body, err := encodeNotification("nid", "meterkit", now, []Sample{s, s})
	require.NoError(t, err)

	// The outer object has exactly two keys, the inner one is a string.
	var outer map[string]any
	require.NoError(t, json.Unmarshal(body, &outer))
	require.Len(t, outer, 2)
	require.Equal(t, "2.0", outer["oslo.version"])
	inner, ok := outer["oslo.message"].(string)
	require.True(t, ok, "oslo.message is a JSON string")

	var n map[string]any
	require.NoError(t, json.Unmarshal([]byte(inner), &n))
	require.Equal(t, "nid", n["message_id"])
	require.Equal(t, "meterkit", n["publisher_id"])
	require.Equal(t, "telemetry.polling", n["event_type"])
	require.Equal(t, "SAMPLE", n["priority"])
	require.Equal(t, "2024-05-01 12:00:00.123456", n["timestamp"])
	samples := n["payload"].(map[string]any)["samples"].([]any)
	require.Len(t, samples, 2)
	keys := samples[0].(map[string]any)
	for _, k := range []string{"counter_name", "counter_type", "counter_unit", "counter_volume", "user_id",
		"project_id", "resource_id", "timestamp", "resource_metadata", "source", "message_id"} {
		require.Contains(t, keys, k)
	}
	require.Len(t, keys, 11, "no message_signature without a secret")

	got, err := DecodeEnvelope(body)
	require.NoError(t, err)
	require.Equal(t, s, got.Payload.Samples[0])
	_, err = DecodeEnvelope([]byte(`{"oslo.version":"1.0","oslo.message":"{}"}`))
	require.ErrorContains(t, err, "oslo.version")
}

func TestNewUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		u := newUUID()
		require.Regexp(t, re, u)
		require.False(t, seen[u])
		seen[u] = true
	}
}

// sampleID is a version 5 UUID; the vector is Python's
// uuid.uuid5(UUID(bytes=b"meterkit.samples"), "acme/web1/42/7").
func TestSampleID(t *testing.T) {
	require.Equal(t, "34168831-bfba-56f6-b648-179056670ace", sampleID("acme/web1/42/", 7))
	require.NotEqual(t, sampleID("acme/web1/42/", 7), sampleID("acme/web1/42/", 8))
	require.Equal(t, sampleID("a/b/1/", 0), sampleID("a/b/1/", 0))
}

// The level the levels stage writes (meterkit.state), and any other
// meterkit.* label, never reaches resource_metadata; the other labels do.
// Notification form, as the notifier builds it: sample, signature, envelope.
func TestMappingDropsMeterkitLabels(t *testing.T) {
	mp := mapping{source: "openstack"}
	m := meter.Measurement{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 97, Time: time.Unix(1714564800, 0), Host: "web1",
		Labels: []meter.Label{{Key: meter.StateLabel, Value: meter.StateCritical}, {Key: "cpu", Value: "0"}, {Key: meter.ReservedPrefix + "other", Value: "x"}}}
	s, err := mp.toSample(&m, "mid")
	require.NoError(t, err)
	secret := []byte("s3cret")
	s.MessageSignature = Sign(&s, secret)
	body, err := encodeNotification("nid", "meterkit", time.Now(), []Sample{s})
	require.NoError(t, err)
	require.NotContains(t, string(body), "meterkit.")

	n, err := DecodeEnvelope(body)
	require.NoError(t, err)
	got := n.Payload.Samples[0]
	require.Equal(t, map[string]string{"cpu": "0", "host": "web1"}, got.ResourceMetadata)
	require.Equal(t, got.MessageSignature, Sign(&got, secret), "signed over what is sent")

	v, err := mp.toV2(&m)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"cpu": "0", "host": "web1"}, v.ResourceMetadata)
	require.Equal(t, []meter.Label{{Key: meter.StateLabel, Value: meter.StateCritical}, {Key: "cpu", Value: "0"},
		{Key: meter.ReservedPrefix + "other", Value: "x"}}, m.Labels, "the measurement is not changed")
}
