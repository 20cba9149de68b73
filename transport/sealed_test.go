package transport_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// In version 2 the payload writes meterkit.state in the state field, as
// the envelope does, and decodes back to the same measurements.
func TestMeasurementsRoundTripVersion2(t *testing.T) {
	env := stateBatch(20, 2)
	payload, err := transport.AppendMeasurementsFor(nil, env.Measurements, env.Host, 2)
	require.NoError(t, err)
	frame := mustEncode(&transport.Envelope{Version: 2, Host: env.Host, Measurements: env.Measurements})
	require.Equal(t, string(payload), string(frame[len(frame)-len(payload):]))
	v1, err := transport.AppendMeasurements(nil, env.Measurements, env.Host)
	require.NoError(t, err)
	require.Less(t, len(payload), len(v1)-20*20, "the labels in two bytes each")

	var d transport.Decoder
	got := transport.Envelope{Host: env.Host}
	require.NoError(t, d.DecodeMeasurements(payload, &got))
	require.Equal(t, decoded(env).Measurements, decoded(&got).Measurements)
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

func seedPayloads() [][]byte {
	var out [][]byte
	for _, fr := range seedFrames() {
		var d transport.Decoder
		var env transport.Envelope
		if d.Decode(fr, &env) != nil {
			continue
		}
		p, err := transport.AppendMeasurements(nil, env.Measurements, env.Host)
		if err == nil && len(p) > 0 {
			out = append(out, p)
		}
	}
	return append(out, []byte{0x3a, 0x00}, []byte{0x08, 0x01, 0x3a, 0x02, 0x52, 0x00})
}

// TestWriteSealedSeedCorpus rewrites testdata/fuzz/FuzzDecodeMeasurements
// when run with -update-corpus.
func TestWriteSealedSeedCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeMeasurements")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for i, p := range seedPayloads() {
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(p)))
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(data), 0o644))
	}
}

// FuzzDecodeMeasurements checks that DecodeMeasurements never panics, fails
// only with the package's errors, agrees with the generated code for
// SealedPayload, and that what it decodes encodes and decodes back the same.
func FuzzDecodeMeasurements(f *testing.F) {
	for _, p := range seedPayloads() {
		f.Add(p)
	}
	small := transport.Decoder{Limits: transport.Limits{MaxFrameSize: 512, MaxMeasurements: 3, MaxLabels: 2, MaxStringLen: 16}}
	var d transport.Decoder
	env := transport.Envelope{Host: "default-host"}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if err := small.DecodeMeasurements(payload, &env); err != nil {
			requireDecodeError(t, err)
		}
		if err := d.DecodeMeasurements(payload, &env); err != nil {
			requireDecodeError(t, err)
			return
		}
		got := decoded(&env)
		var p wirepb.SealedPayload
		if proto.Unmarshal(payload, &p) == nil {
			want := fromPB(&wirepb.Envelope{Version: 1, Host: env.Host, Measurements: p.Measurements})
			require.Equal(t, want.Measurements, got.Measurements, "generated code decodes differently")
		}
		again, err := transport.AppendMeasurements(nil, env.Measurements, env.Host)
		require.NoError(t, err)
		var d2 transport.Decoder
		env2 := transport.Envelope{Host: env.Host}
		require.NoError(t, d2.DecodeMeasurements(again, &env2))
		require.Equal(t, got.Measurements, decoded(&env2).Measurements)
	})
}
