package transport_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/internal/wirepb"
)

func TestMeasurementsRoundTrip(t *testing.T) {
	env := hostBatch(5)
	payload, err := transport.AppendMeasurements(nil, env.Measurements, env.Host)
	require.NoError(t, err)
	// The payload is the measurements part of the envelope's own encoding.
	frame := mustEncode(&transport.Envelope{Host: env.Host, Measurements: env.Measurements})
	require.Equal(t, string(payload), string(frame[len(frame)-len(payload):]))

	var d transport.Decoder
	got := transport.Envelope{Host: env.Host, Tenant: "kept"}
	require.NoError(t, d.DecodeMeasurements(payload, &got))
	require.Equal(t, "kept", got.Tenant)
	want := decoded(env)
	require.Equal(t, want.Measurements, decoded(&got).Measurements)
}

func TestDecodeMeasurementsLimits(t *testing.T) {
	env := hostBatch(5)
	payload, err := transport.AppendMeasurements(nil, env.Measurements, env.Host)
	require.NoError(t, err)
	for _, lim := range []transport.Limits{
		{MaxMeasurements: 4}, {MaxFrameSize: len(payload) - 1}, {MaxStringLen: 3}, {MaxLabels: 1},
	} {
		d := transport.Decoder{Limits: lim}
		var got transport.Envelope
		require.ErrorIs(t, d.DecodeMeasurements(payload, &got), transport.ErrTooLarge, "%+v", lim)
	}
	var d transport.Decoder
	var got transport.Envelope
	for _, bad := range [][]byte{{0x3a, 0x05, 0x0a}, {0x38, 0x01}, {0xff}} {
		require.ErrorIs(t, d.DecodeMeasurements(bad, &got), transport.ErrMalformed, "%x", bad)
	}
}

// TestSealedPayloadProto: the payload is the SealedPayload message of
// envelope.proto.
func TestSealedPayloadProto(t *testing.T) {
	env := hostBatch(3)
	payload, err := transport.AppendMeasurements(nil, env.Measurements, env.Host)
	require.NoError(t, err)
	var p wirepb.SealedPayload
	require.NoError(t, proto.Unmarshal(payload, &p))
	want := &wirepb.SealedPayload{Measurements: toPB(env).Measurements}
	require.True(t, proto.Equal(want, &p))
}
