package transport_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/internal/wirepb"
)

// stateBatch is n measurements as the levels stage leaves them: every one
// ends with meterkit.state, and every third has a label before it.
func stateBatch(n int, version uint32) *transport.Envelope {
	env := &transport.Envelope{Version: version, Tenant: "acme", Agent: "a", Seq: 1, SentAt: t0, Host: "h"}
	levels := []string{meter.StateOK, meter.StateWarning, meter.StateAlert, meter.StateCritical, meter.StateStale}
	for i := range n {
		m := meter.Measurement{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: float64(i), Time: t0, Host: "h"}
		if i%3 == 0 {
			m.Labels = append(m.Labels, meter.Label{Key: "mode", Value: "user"})
		}
		m.Labels = append(m.Labels, meter.Label{Key: meter.StateLabel, Value: levels[i%len(levels)]})
		env.Measurements = append(env.Measurements, m)
	}
	return env
}

// TestStateField checks version 2's state field: a last meterkit.state
// label with a level's name takes two bytes instead of the label's 22 or
// more, decodes as the same label in the same place, and MeasurementSizeFor
// says so; version 1 writes the label as it is.
func TestStateField(t *testing.T) {
	var d transport.Decoder
	v1, err := transport.AppendEnvelope(nil, stateBatch(100, 1))
	require.NoError(t, err)
	env := stateBatch(100, 2)
	v2, err := transport.AppendEnvelope(nil, env)
	require.NoError(t, err)
	// "meterkit.state" with "ok" is 22 bytes as a label (tag, length, key
	// and value fields), and each longer level name adds its length.
	saved := 0
	for _, m := range env.Measurements {
		saved += 2 + 2 + len(meter.StateLabel) + 2 + len(m.Labels[len(m.Labels)-1].Value) - 2
	}
	require.Equal(t, len(v1)-saved, len(v2), "version 2 frame size")

	var got transport.Envelope
	require.NoError(t, d.Decode(v2, &got))
	require.Equal(t, uint32(2), got.Version)
	require.Equal(t, normalize(*env), decoded(&got))
	for _, m := range got.Measurements {
		require.NoError(t, m.Validate())
	}

	// The generated code reads the state field and writes the same bytes.
	var p wirepb.Envelope
	require.NoError(t, proto.Unmarshal(v2, &p))
	require.Equal(t, wirepb.State_STATE_OK, p.Measurements[0].State)
	require.Equal(t, wirepb.State_STATE_WARNING, p.Measurements[1].State)
	require.Empty(t, p.Measurements[1].Labels)
	pb, err := proto.Marshal(&p)
	require.NoError(t, err)
	require.Equal(t, string(pb), string(v2))

	// The sizes the agent cuts batches by.
	head, err := transport.AppendEnvelope(nil, &transport.Envelope{Version: 2, Tenant: "acme", Agent: "a", Seq: 1, SentAt: t0, Host: "h"})
	require.NoError(t, err)
	sum1, sum2 := len(head), len(head)
	for i := range env.Measurements {
		m := &env.Measurements[i]
		sum1 += transport.MeasurementSizeFor(m, env.Host, 1)
		sum2 += transport.MeasurementSizeFor(m, env.Host, 2)
		require.Equal(t, transport.MeasurementSize(m, env.Host), transport.MeasurementSizeFor(m, env.Host, 1))
	}
	require.Equal(t, len(v1), sum1)
	require.Equal(t, len(v2), sum2)
}

// TestStateFieldOnlyWhenLast writes meterkit.state as a label wherever
// the state field would change what decodes: not last, a value that is
// not a level's name, or version 1.
func TestStateFieldOnlyWhenLast(t *testing.T) {
	var d transport.Decoder
	state := func(v string) meter.Label { return meter.Label{Key: meter.StateLabel, Value: v} }
	for _, tt := range []struct {
		name    string
		version uint32
		labels  []meter.Label
		field   bool
	}{
		{"last", 2, []meter.Label{{Key: "a", Value: "b"}, state("critical")}, true},
		{"only", 2, []meter.Label{state("stale")}, true},
		{"first", 2, []meter.Label{state("ok"), {Key: "a", Value: "b"}}, false},
		{"unknown level", 2, []meter.Label{state("OK")}, false},
		{"empty value", 2, []meter.Label{state("")}, false},
		{"version 1", 1, []meter.Label{state("ok")}, false},
		{"version 0", 0, []meter.Label{state("ok")}, false},
		{"twice", 2, []meter.Label{state("ok"), state("alert")}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := transport.Envelope{Version: tt.version, Host: "h", Measurements: []meter.Measurement{
				{Name: "m", Kind: meter.Gauge, Value: 1, Time: t0, Host: "h", Labels: tt.labels}}}
			b, err := transport.AppendEnvelope(nil, &env)
			require.NoError(t, err)
			var p wirepb.Envelope
			require.NoError(t, proto.Unmarshal(b, &p))
			require.Equal(t, tt.field, p.Measurements[0].State != wirepb.State_STATE_UNSPECIFIED)
			var got transport.Envelope
			require.NoError(t, d.Decode(b, &got))
			require.Equal(t, tt.labels, got.Measurements[0].Labels)
		})
	}
}

// TestStateFieldAsOthersWriteIt decodes the state field where another
// encoder may put it: before the labels, twice (the last wins), zero, and
// in a version 1 envelope (read all the same). A state field next to a
// meterkit.state label decodes as two such labels, which Validate refuses.
func TestStateFieldAsOthersWriteIt(t *testing.T) {
	name := raw(0x0a, 1, 'm')
	label := bytesField(10, build(bytesField(1, []byte("a")), bytesField(2, []byte("b"))))
	stateLabel := bytesField(10, build(bytesField(1, []byte(meter.StateLabel)), bytesField(2, []byte("ok"))))
	ab := meter.Label{Key: "a", Value: "b"}
	st := func(v string) meter.Label { return meter.Label{Key: meter.StateLabel, Value: v} }
	for _, tt := range []struct {
		name  string
		frame []byte
		want  []meter.Label
	}{
		{"before the labels", build(version2, measurementField(name, varintField(11, 3), label)), []meter.Label{ab, st("alert")}},
		{"twice", build(version2, measurementField(name, varintField(11, 3), label, varintField(11, 1))), []meter.Label{ab, st("ok")}},
		{"zero", build(version2, measurementField(name, label, varintField(11, 0))), []meter.Label{ab}},
		{"version 1", build(version1, measurementField(name, varintField(11, 5))), []meter.Label{st("stale")}},
		{"and a label", build(version2, measurementField(name, stateLabel, varintField(11, 2))), []meter.Label{st("ok"), st("warning")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var d transport.Decoder
			var got transport.Envelope
			require.NoError(t, d.Decode(tt.frame, &got))
			require.Equal(t, tt.want, got.Measurements[0].Labels)
		})
	}
	var d transport.Decoder
	var got transport.Envelope
	require.NoError(t, d.Decode(build(version2, measurementField(name, raw(0x10, 1, 0x29, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f), stateLabel, varintField(11, 2))), &got))
	m := got.Measurements[0]
	m.Time = time.Now()
	require.ErrorContains(t, m.Validate(), "meterkit.state")
}

// TestStateFieldAllocs checks that decoding the state field allocates
// nothing of its own: the label's strings are the level names.
func TestStateFieldAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations differ under -race")
	}
	frame, err := transport.AppendEnvelope(nil, stateBatch(1000, 2))
	require.NoError(t, err)
	var d transport.Decoder
	var env transport.Envelope
	require.NoError(t, d.Decode(frame, &env))
	allocs := testing.AllocsPerRun(20, func() { _ = d.Decode(frame, &env) })
	require.LessOrEqual(t, allocs, 1.0, "the copy of the frame only")
	require.True(t, strings.HasPrefix(env.Measurements[1].Labels[0].Key, "meterkit."))
}
