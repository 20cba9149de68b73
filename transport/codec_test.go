package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/internal/wirepb"
)

var t0 = time.Date(2026, 11, 21, 10, 30, 15, 123456789, time.UTC)

func TestRoundTrip(t *testing.T) {
	full := meter.Measurement{
		Name: "disk.read.bytes", Kind: meter.Cumulative, Unit: "B", Value: 1.5e9,
		Time: t0, Host: "web-01", ResourceID: "sda", ProjectID: "p-1", UserID: "u-1",
		Labels: []meter.Label{{Key: "model", Value: "Samsung SSD"}, {Key: "empty", Value: ""}, {Key: "", Value: "no key"}},
	}
	tests := []struct {
		name string
		env  transport.Envelope
	}{
		{"empty", transport.Envelope{}},
		{"header only", transport.Envelope{Version: 1, Tenant: "acme", Agent: "agent-7", Seq: math.MaxUint64, SentAt: t0, Host: "web-01"}},
		{"every field", transport.Envelope{Tenant: "acme", Agent: "a", Seq: 1, SentAt: t0, Host: "web-01",
			Measurements: []meter.Measurement{full, full}}},
		{"empty strings", transport.Envelope{Measurements: []meter.Measurement{{}, {Kind: meter.Gauge}}}},
		{"host defaulting", transport.Envelope{Host: "web-01", Measurements: []meter.Measurement{
			{Name: "same", Host: "web-01"},
			{Name: "empty", Host: ""},
			{Name: "other", Host: "db-02"},
		}}},
		{"no default host", transport.Envelope{Measurements: []meter.Measurement{{Name: "a"}, {Name: "b", Host: "db-02"}}}},
		{"times", transport.Envelope{SentAt: time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), Measurements: []meter.Measurement{
			{Name: "ns", Time: time.Date(2261, 12, 31, 23, 59, 59, 1, time.UTC)},
			{Name: "local", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))},
			{Name: "old", Time: time.Date(1700, 1, 1, 0, 0, 0, 7, time.UTC)},
			{Name: "zero"},
			{Name: "monotonic", Time: time.Now()},
		}}},
		{"values", transport.Envelope{Measurements: []meter.Measurement{
			{Name: "neg", Value: -42.25}, {Name: "negzero", Value: math.Copysign(0, -1)},
			{Name: "tiny", Value: math.SmallestNonzeroFloat64}, {Name: "max", Value: math.MaxFloat64},
			{Name: "inf", Value: math.Inf(-1)},
		}}},
		{"kinds", transport.Envelope{Measurements: []meter.Measurement{
			{Kind: meter.Gauge}, {Kind: meter.Cumulative}, {Kind: meter.Delta}, {Kind: 127}, {Kind: 128}, {Kind: 255},
		}}},
		{"sealed", transport.Envelope{Tenant: "acme", Seq: 9, Sealed: []byte{0, 1, 2, 255}, Auth: []byte("key-1/nonce")}},
		{"sealed only", transport.Envelope{Sealed: []byte{7}}},
		{"auth only", transport.Envelope{Auth: []byte{8}}},
		{"long strings", transport.Envelope{Tenant: strings.Repeat("t", 1024), Measurements: []meter.Measurement{
			{Name: strings.Repeat("n", 300), Labels: []meter.Label{{Key: strings.Repeat("k", 1024), Value: strings.Repeat("v", 1024)}}},
		}}},
		{"many labels", transport.Envelope{Measurements: []meter.Measurement{{Name: "x", Labels: manyLabels(meter.MaxLabels)}}}},
	}
	var d transport.Decoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame, err := transport.AppendEnvelope([]byte("prefix"), &tt.env)
			require.NoError(t, err)
			require.Equal(t, "prefix", string(frame[:6]))
			frame = frame[6:]

			var got transport.Envelope
			require.NoError(t, d.Decode(frame, &got))
			require.Equal(t, normalize(tt.env), decoded(&got))

			// The generated code reads the same content and writes the same bytes.
			var p wirepb.Envelope
			require.NoError(t, proto.Unmarshal(frame, &p))
			require.Equal(t, normalize(tt.env), fromPB(&p))
			pb, err := proto.Marshal(toPB(&tt.env))
			require.NoError(t, err)
			require.Equal(t, string(pb), string(frame))
		})
	}
}

func manyLabels(n int) []meter.Label {
	ls := make([]meter.Label, n)
	for i := range ls {
		ls[i] = meter.Label{Key: "k" + strings.Repeat("x", i), Value: "v"}
	}
	return ls
}

func TestHostOmittedOnTheWire(t *testing.T) {
	env := transport.Envelope{Host: "web-01", Measurements: []meter.Measurement{{Name: "a", Host: "web-01"}, {Name: "b"}}}
	var p wirepb.Envelope
	require.NoError(t, proto.Unmarshal(mustEncode(&env), &p))
	require.Nil(t, p.Measurements[0].Host, "host equal to the default is left out")
	require.NotNil(t, p.Measurements[1].Host, "empty host differing from the default is sent")
	require.Empty(t, *p.Measurements[1].Host)
	require.Equal(t, 1, strings.Count(string(mustEncode(&env)), "web-01"))
}

// TestDecodeHostAfterMeasurements: other encoders may put fields in any order.
func TestDecodeHostAfterMeasurements(t *testing.T) {
	m := mustEncode(&transport.Envelope{Measurements: []meter.Measurement{{Name: "a"}}})
	frame := protowire.AppendTag(nil, 7, protowire.BytesType)
	body, _ := protowire.ConsumeBytes(m[3:]) // after version (2 bytes) and the measurements tag
	frame = protowire.AppendBytes(frame, body)
	frame = protowire.AppendTag(frame, 6, protowire.BytesType)
	frame = protowire.AppendString(frame, "late-host")
	frame = protowire.AppendTag(frame, 1, protowire.VarintType)
	frame = protowire.AppendVarint(frame, 1)

	var env transport.Envelope
	require.NoError(t, new(transport.Decoder).Decode(frame, &env))
	require.Equal(t, "late-host", env.Host)
	require.Equal(t, "late-host", env.Measurements[0].Host)
	require.Equal(t, "a", env.Measurements[0].Name)
}

func TestCrossCheckRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var d transport.Decoder
	var got transport.Envelope
	var buf []byte
	for i := range 2000 {
		env := randomEnvelope(r)
		want := normalize(env)

		// hand encoder -> generated decoder
		var err error
		buf, err = transport.AppendEnvelope(buf[:0], &env)
		require.NoError(t, err)
		var p wirepb.Envelope
		require.NoError(t, proto.Unmarshal(buf, &p), "case %d", i)
		require.Equal(t, want, fromPB(&p), "case %d", i)

		// generated encoder -> hand decoder, and the same bytes
		pb, err := proto.Marshal(toPB(&env))
		require.NoError(t, err)
		require.Equal(t, string(pb), string(buf), "case %d", i)
		require.NoError(t, d.Decode(pb, &got), "case %d", i)
		require.Equal(t, want, decoded(&got), "case %d", i)
	}
}

// TestUnknownFieldsSkipped adds fields of every wire type, with numbers the
// schema does not use, to the envelope, a measurement and a label.
func TestUnknownFieldsSkipped(t *testing.T) {
	unknown := func(b []byte) []byte {
		b = protowire.AppendTag(b, 100, protowire.VarintType)
		b = protowire.AppendVarint(b, 1<<40)
		b = protowire.AppendTag(b, 101, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, 7)
		b = protowire.AppendTag(b, 102, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, 7)
		b = protowire.AppendTag(b, 103, protowire.BytesType)
		b = protowire.AppendString(b, "future")
		b = protowire.AppendTag(b, 104, protowire.StartGroupType)
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, 5)
		b = protowire.AppendTag(b, 104, protowire.EndGroupType)
		return b
	}
	label := unknown(nil)
	label = protowire.AppendTag(label, 1, protowire.BytesType)
	label = protowire.AppendString(label, "k")
	label = unknown(label)
	m := unknown(nil)
	m = protowire.AppendTag(m, 1, protowire.BytesType)
	m = protowire.AppendString(m, "cpu.util")
	m = protowire.AppendTag(m, 10, protowire.BytesType)
	m = protowire.AppendBytes(m, label)
	m = unknown(m)
	frame := unknown(nil)
	frame = protowire.AppendTag(frame, 1, protowire.VarintType)
	frame = protowire.AppendVarint(frame, 1)
	frame = protowire.AppendTag(frame, 7, protowire.BytesType)
	frame = protowire.AppendBytes(frame, m)
	frame = unknown(frame)

	var env transport.Envelope
	require.NoError(t, new(transport.Decoder).Decode(frame, &env))
	require.Equal(t, transport.Envelope{Version: 1, Measurements: []meter.Measurement{
		{Name: "cpu.util", Labels: []meter.Label{{Key: "k"}}},
	}}, decoded(&env))
}

func TestLastFieldWins(t *testing.T) {
	frame := mustEncode(&transport.Envelope{Tenant: "first", Host: "h1", Measurements: []meter.Measurement{{Name: "a", Host: "h1"}}})
	frame = protowire.AppendTag(frame, 2, protowire.BytesType)
	frame = protowire.AppendString(frame, "second")
	frame = protowire.AppendTag(frame, 6, protowire.BytesType)
	frame = protowire.AppendString(frame, "h2")
	var env transport.Envelope
	require.NoError(t, new(transport.Decoder).Decode(frame, &env))
	var p wirepb.Envelope
	require.NoError(t, proto.Unmarshal(frame, &p))
	require.Equal(t, fromPB(&p), decoded(&env))
	require.Equal(t, "second", env.Tenant)
	require.Equal(t, "h2", env.Measurements[0].Host)
}

func TestDecodeDoesNotAliasFrame(t *testing.T) {
	env := hostBatch(10)
	env.Sealed, env.Auth = []byte("sealed"), []byte("auth")
	frame := mustEncode(env)
	var d transport.Decoder
	var got transport.Envelope
	require.NoError(t, d.Decode(frame, &got))
	want := decoded(&got)
	for i := range frame {
		frame[i] = 0xff
	}
	require.Equal(t, want, decoded(&got))
	require.Equal(t, []byte("sealed"), got.Sealed)
	require.Equal(t, []byte("auth"), got.Auth)
}

func TestDecodeReusesMemory(t *testing.T) {
	var d transport.Decoder
	var env transport.Envelope
	big := hostBatch(100)
	require.NoError(t, d.Decode(mustEncode(big), &env))
	require.Equal(t, normalize(*big), decoded(&env))
	ms := &env.Measurements[0]

	small := hostBatch(3)
	small.Tenant = ""
	require.NoError(t, d.Decode(mustEncode(small), &env))
	require.Equal(t, normalize(*small), decoded(&env))
	require.Same(t, ms, &env.Measurements[0], "backing array reused")

	// Appending to one measurement's labels does not overwrite the next one's.
	m1 := env.Measurements[1]
	require.Len(t, m1.Labels, 1)
	_ = append(m1.Labels, meter.Label{Key: "extra"})
	require.Equal(t, normalize(*small), decoded(&env))
}

func TestAppendEnvelopeErrors(t *testing.T) {
	tests := []struct {
		name string
		env  transport.Envelope
		want string
	}{
		{"sent_at too late", transport.Envelope{SentAt: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, "SentAt"},
		{"sent_at too early", transport.Envelope{SentAt: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}, "SentAt"},
		{"time", transport.Envelope{Measurements: []meter.Measurement{{Name: "ok"}, {Name: "cpu", Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}}}, `Measurements[1] ("cpu"): Time`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := transport.AppendEnvelope(dst, &tt.env)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, "keep", string(out))
		})
	}
}

// frame builds a frame from protowire pieces.
type piece func([]byte) []byte

func build(ps ...piece) []byte {
	var b []byte
	for _, p := range ps {
		b = p(b)
	}
	return b
}

func varintField(num protowire.Number, v uint64) piece {
	return func(b []byte) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
	}
}

func bytesField(num protowire.Number, v []byte) piece {
	return func(b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
}

func raw(v ...byte) piece { return func(b []byte) []byte { return append(b, v...) } }

var version1, version2 = varintField(1, 1), varintField(1, 2)

func measurementField(ps ...piece) piece { return bytesField(7, build(ps...)) }

func TestDecodeErrors(t *testing.T) {
	small := transport.Limits{MaxFrameSize: 200, MaxMeasurements: 2, MaxLabels: 2, MaxStringLen: 8}
	tests := []struct {
		name   string
		limits transport.Limits
		frame  []byte
		is     error
		want   string // in the message
	}{
		{"empty", transport.Limits{}, nil, transport.ErrMalformed, "version at byte 0: missing"},
		{"version zero", transport.Limits{}, build(varintField(1, 0)), transport.ErrMalformed, "version at byte 0: missing"},
		{"newer version", transport.Limits{}, build(varintField(1, 3)), transport.ErrMalformed, "version 3 is newer than 2"},
		{"unknown state", transport.Limits{}, build(version2, measurementField(raw(0x0a, 1, 'x'), varintField(11, 6))), transport.ErrMalformed,
			"measurements[0].state at byte 8: state 6 unknown (0-5)"},
		{"state wire type", transport.Limits{}, build(version2, measurementField(bytesField(11, []byte("ok")))), transport.ErrMalformed,
			"measurements[0].state at byte 4: wrong wire type 2"},
		{"state over the labels", transport.Limits{MaxLabels: 1}, build(version2, measurementField(bytesField(10, build(bytesField(1, []byte("k")))), varintField(11, 1))),
			transport.ErrTooLarge, "measurements[0].state at byte 4: more than 1 labels with meterkit.state"},
		{"version overflow", transport.Limits{}, build(varintField(1, 1<<32)), transport.ErrMalformed, "overflows uint32"},
		{"field number zero", transport.Limits{}, build(version1, raw(0x00)), transport.ErrMalformed, "envelope at byte 2: invalid field number"},
		{"truncated varint", transport.Limits{}, build(raw(0x08, 0x80)), transport.ErrMalformed, "version at byte 1: truncated"},
		{"varint overflow", transport.Limits{}, build(raw(0x20), raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), transport.ErrMalformed, "seq at byte 1: variable length integer overflow"},
		{"length past end", transport.Limits{}, build(version1, raw(0x12, 0x05, 'a')), transport.ErrMalformed, "tenant at byte 3: truncated"},
		{"huge length", transport.Limits{}, build(version1, raw(0x3a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)), transport.ErrMalformed, "measurements at byte 3"},
		{"wrong wire type tenant", transport.Limits{}, build(version1, varintField(2, 1)), transport.ErrMalformed, "tenant at byte 2: wrong wire type 0"},
		{"wrong wire type version", transport.Limits{}, build(bytesField(1, []byte{1})), transport.ErrMalformed, "version at byte 0: wrong wire type 2"},
		{"wrong wire type sent_at", transport.Limits{}, build(version1, varintField(5, 1)), transport.ErrMalformed, "sent_at at byte 2: wrong wire type 0"},
		{"truncated fixed64", transport.Limits{}, build(version1, raw(0x29, 1, 2, 3)), transport.ErrMalformed, "sent_at at byte 3: truncated"},
		{"unterminated group", transport.Limits{}, build(version1, raw(10<<3|3)), transport.ErrMalformed, "field 10 at byte 3: truncated"},
		{"reserved wire type", transport.Limits{}, build(version1, raw(10<<3|6)), transport.ErrMalformed, "field 10 at byte 3: cannot parse reserved wire type"},
		{"reserved wire type known field", transport.Limits{}, build(raw(1<<3 | 6)), transport.ErrMalformed, "version at byte 0: wrong wire type 6"},
		{"measurement wrong type", transport.Limits{}, build(version1, measurementField(varintField(1, 3))), transport.ErrMalformed, "measurements[0].name at byte 4: wrong wire type 0"},
		{"measurement truncated", transport.Limits{}, build(version1, measurementField(raw(0x0a, 0x09, 'x'))), transport.ErrMalformed, "measurements[0].name at byte 5: truncated"},
		{"second measurement", transport.Limits{}, build(version1, measurementField(), measurementField(raw(0x21, 1))), transport.ErrMalformed, "measurements[1].value at byte 7: truncated"},
		{"kind out of range", transport.Limits{}, build(version1, measurementField(varintField(2, 256))), transport.ErrMalformed, "measurements[0].kind at byte 5: kind 256 out of range"},
		{"negative kind", transport.Limits{}, build(version1, measurementField(varintField(2, math.MaxUint64))), transport.ErrMalformed, "measurements[0].kind"},
		{"time wrong type", transport.Limits{}, build(version1, measurementField(varintField(5, 1))), transport.ErrMalformed, "measurements[0].time at byte 4: wrong wire type 0"},
		{"label wrong type", transport.Limits{}, build(version1, measurementField(bytesField(10, build(varintField(2, 1))))), transport.ErrMalformed, "measurements[0].labels[0].value at byte 6: wrong wire type 0"},
		{"label truncated", transport.Limits{}, build(version1, measurementField(bytesField(10, build(raw(0x0a, 3, 'k'))))), transport.ErrMalformed, "measurements[0].labels[0].key at byte 7: truncated"},
		{"measurement bad tag", transport.Limits{}, build(version1, measurementField(raw(0x80))), transport.ErrMalformed, "measurements[0] at byte 4: truncated"},

		{"groups nested too deep", transport.Limits{}, build(version1, raw([]byte(strings.Repeat("\x53", 20000))...)), transport.ErrMalformed, "field 10 at byte 3"},

		{"frame too large", small, make([]byte, 201), transport.ErrTooLarge, "frame at byte 0: 201 bytes, over the limit of 200"},
		{"frame too large default", transport.Limits{}, make([]byte, 4<<20+1), transport.ErrTooLarge, "frame"},
		{"too many measurements", small, build(version1, measurementField(), measurementField(), measurementField()), transport.ErrTooLarge, "measurements at byte 6: more than 2 measurements"},
		{"too many labels", small, build(version1, measurementField(bytesField(10, nil), bytesField(10, nil), bytesField(10, nil))), transport.ErrTooLarge, "measurements[0].labels at byte 8: more than 2 labels"},
		{"too many labels default", transport.Limits{}, mustEncode(&transport.Envelope{Measurements: []meter.Measurement{{Labels: manyLabels(meter.MaxLabels + 1)}}}), transport.ErrTooLarge, "more than 64 labels"},
		{"tenant too long", small, build(version1, bytesField(2, []byte("123456789"))), transport.ErrTooLarge, "tenant at byte 3: 9 bytes, over the limit of 8"},
		{"name too long", small, build(version1, measurementField(bytesField(1, []byte("123456789")))), transport.ErrTooLarge, "measurements[0].name at byte 5: 9 bytes"},
		{"label value too long", small, build(version1, measurementField(bytesField(10, build(bytesField(2, []byte("123456789")))))), transport.ErrTooLarge, "measurements[0].labels[0].value at byte 7: 9 bytes"},
		{"default string limit", transport.Limits{}, mustEncode(&transport.Envelope{Measurements: []meter.Measurement{{Unit: strings.Repeat("u", 1025)}}}), transport.ErrTooLarge, "measurements[0].unit at byte 6: 1025 bytes, over the limit of 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := transport.Decoder{Limits: tt.limits}
			env := *hostBatch(3)
			err := d.Decode(tt.frame, &env)
			require.ErrorIs(t, err, tt.is)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestDefaultLimits(t *testing.T) {
	require.Equal(t, transport.Limits{MaxFrameSize: 4 << 20, MaxMeasurements: 100_000, MaxLabels: meter.MaxLabels, MaxStringLen: meter.MaxLabelValueLen}, transport.DefaultLimits())
	// A full default-sized envelope decodes with the zero Limits.
	env := transport.Envelope{Measurements: make([]meter.Measurement, 100_000)}
	var got transport.Envelope
	require.NoError(t, new(transport.Decoder).Decode(mustEncode(&env), &got))
	require.Len(t, got.Measurements, 100_000)
}

// TestEveryPrefix decodes every prefix of valid frames: each either
// decodes or fails with one of the package's errors, and never panics.
func TestEveryPrefix(t *testing.T) {
	frames := [][]byte{mustEncode(hostBatch(20))}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		env := randomEnvelope(r)
		frames = append(frames, mustEncode(&env))
	}
	var d transport.Decoder
	var env transport.Envelope
	for _, frame := range frames {
		for n := range len(frame) + 1 {
			err := d.Decode(frame[:n], &env)
			if err != nil {
				require.True(t, errors.Is(err, transport.ErrMalformed) || errors.Is(err, transport.ErrTooLarge), "%v", err)
			}
		}
		require.NoError(t, d.Decode(frame, &env))
	}
}

// TestGarbage decodes random bytes and random mutations of valid frames.
func TestGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	valid := mustEncode(hostBatch(10))
	var d transport.Decoder
	var env transport.Envelope
	for range 20000 {
		var frame []byte
		if r.IntN(2) == 0 {
			frame = make([]byte, r.IntN(64))
			for i := range frame {
				frame[i] = byte(r.Uint32())
			}
		} else {
			frame = append([]byte(nil), valid...)
			for range 1 + r.IntN(4) {
				frame[r.IntN(len(frame))] = byte(r.Uint32())
			}
		}
		err := d.Decode(frame, &env)
		if err != nil {
			require.True(t, errors.Is(err, transport.ErrMalformed) || errors.Is(err, transport.ErrTooLarge), "%v", err)
		}
	}
}

func TestAck(t *testing.T) {
	tests := []transport.Ack{
		{},
		{Seq: 1, Status: transport.StatusOK},
		{Seq: math.MaxUint64, Status: transport.StatusRetry, Message: "sink gnocchi: 503"},
		{Seq: 7, Status: transport.StatusRejected, Message: "malformed frame: ünïcode"},
		{Seq: 8, Status: 200},
		{Seq: 9, Version: transport.MaxVersion},
		{Seq: 10, Status: transport.StatusRejected, Reason: transport.ReasonTooLarge, Limit: 1 << 20, Version: 1},
	}
	for _, a := range tests {
		b := transport.AppendAck(nil, a)
		got, err := transport.DecodeAck(b)
		require.NoError(t, err)
		require.Equal(t, a, got)

		var p wirepb.Ack
		require.NoError(t, proto.Unmarshal(b, &p))
		require.Equal(t, a.Seq, p.Seq)
		require.Equal(t, a.Status, transport.Status(p.Status))
		require.Equal(t, a.Message, p.Message)
		require.Equal(t, a.Version, p.Version)
		pb, err := proto.Marshal(&p)
		require.NoError(t, err)
		require.Equal(t, string(pb), string(b))
	}
	// DecodeAck copies the message and skips unknown fields.
	b := transport.AppendAck(nil, transport.Ack{Seq: 3, Message: "why"})
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	b = protowire.AppendString(b, "future")
	a, err := transport.DecodeAck(b)
	require.NoError(t, err)
	for i := range b {
		b[i] = 0
	}
	require.Equal(t, transport.Ack{Seq: 3, Message: "why"}, a)
}

func TestDecodeAckErrors(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"status out of range", build(varintField(2, 256)), "ack.status at byte 1: status 256 out of range"},
		{"wrong type", build(bytesField(1, nil)), "ack.seq at byte 0: wrong wire type 2"},
		{"wrong type message", build(varintField(3, 1)), "ack.message at byte 0: wrong wire type 0"},
		{"truncated", build(raw(0x1a, 0x03, 'a')), "ack.message at byte 1: truncated"},
		{"bad tag", build(raw(0x00)), "ack at byte 0: invalid field number"},
		{"bad unknown", build(raw(0x7d, 1)), "ack.field 15 at byte 1: truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := transport.DecodeAck(tt.frame)
			require.ErrorIs(t, err, transport.ErrMalformed)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	env := hostBatch(1000)
	buf, err := transport.AppendEnvelope(nil, env)
	require.NoError(t, err)
	frame := append([]byte(nil), buf...)

	encode := testing.AllocsPerRun(100, func() {
		buf, _ = transport.AppendEnvelope(buf[:0], env)
	})
	require.Zero(t, encode, "AppendEnvelope into a warm buffer")

	var d transport.Decoder
	var got transport.Envelope
	require.NoError(t, d.Decode(frame, &got))
	decode := testing.AllocsPerRun(100, func() {
		if err := d.Decode(frame, &got); err != nil {
			panic(err)
		}
	})
	require.LessOrEqual(t, decode, 1.0, "warm Decode of 1,000 measurements")
	require.Equal(t, normalize(*env), decoded(&got))

	ack := transport.AppendAck(nil, transport.Ack{Seq: 1, Message: "x"})
	require.Zero(t, testing.AllocsPerRun(100, func() { ack = transport.AppendAck(ack[:0], transport.Ack{Seq: 2, Status: transport.StatusRetry}) }))
}

func TestTimeRange(t *testing.T) {
	for _, n := range []int64{math.MinInt64, math.MinInt64 + 1, -1, 1, math.MaxInt64 - 1, math.MaxInt64} {
		tm := time.Unix(0, n)
		b, err := transport.AppendEnvelope(nil, &transport.Envelope{SentAt: tm, Measurements: []meter.Measurement{{Time: tm}}})
		require.NoError(t, err, n)
		var env transport.Envelope
		require.NoError(t, new(transport.Decoder).Decode(b, &env))
		require.Equal(t, n, env.SentAt.UnixNano())
		require.Equal(t, n, env.Measurements[0].Time.UnixNano())
		require.Equal(t, time.UTC, env.SentAt.Location())
	}
	for _, tm := range []time.Time{time.Unix(0, math.MinInt64).Add(-1), time.Unix(0, math.MaxInt64).Add(1)} {
		_, err := transport.AppendEnvelope(nil, &transport.Envelope{SentAt: tm})
		require.ErrorContains(t, err, "outside the years 1678-2262", tm)
	}
}

// TestAckReason: the reason and the receiver's limit travel in fields 4
// and 5, after the fields of the first release, so that a sender of that
// release reads the same status and message (it skips unknown fields), and
// an ack from a receiver of that release reads as ReasonNone.
func TestAckReason(t *testing.T) {
	tests := []transport.Ack{
		{Seq: 9, Status: transport.StatusRejected, Message: "frame of 9000 bytes", Reason: transport.ReasonTooLarge, Limit: 4 << 20},
		{Seq: 10, Status: transport.StatusRejected, Message: "unknown tenant", Reason: transport.ReasonRefused},
		{Seq: 11, Status: transport.StatusRejected, Message: "no valid measurement", Reason: transport.ReasonBadBatch},
		{Seq: 12, Status: transport.StatusRejected, Message: "from the future", Reason: 77},
	}
	for _, a := range tests {
		b := transport.AppendAck(nil, a)
		got, err := transport.DecodeAck(b)
		require.NoError(t, err)
		require.Equal(t, a, got)

		var p wirepb.Ack
		require.NoError(t, proto.Unmarshal(b, &p))
		require.Equal(t, uint32(a.Reason), uint32(p.Reason))
		require.Equal(t, a.Limit, p.MaxFrameSize)
		pb, err := proto.Marshal(&p)
		require.NoError(t, err)
		require.Equal(t, string(pb), string(b))

		// What a peer of the first release writes and reads: the first
		// three fields, a prefix of the new encoding.
		old := transport.AppendAck(nil, transport.Ack{Seq: a.Seq, Status: a.Status, Message: a.Message})
		require.True(t, bytes.HasPrefix(b, old))
		fromOld, err := transport.DecodeAck(old)
		require.NoError(t, err)
		require.Equal(t, transport.ReasonNone, fromOld.Reason)
		require.Equal(t, a.Status, fromOld.Status)
	}
	// A reason beyond a byte is read as none, not as an error.
	b := transport.AppendAck(nil, transport.Ack{Seq: 3, Status: transport.StatusRejected})
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, 1000)
	a, err := transport.DecodeAck(b)
	require.NoError(t, err)
	require.Equal(t, transport.Ack{Seq: 3, Status: transport.StatusRejected}, a)
}

func TestReplyError(t *testing.T) {
	err := transport.AckError(transport.Ack{Seq: 5, Status: transport.StatusRejected, Message: "frame of 9000 bytes",
		Reason: transport.ReasonTooLarge, Limit: 4096})
	require.ErrorIs(t, err, transport.ErrRejected)
	require.ErrorIs(t, err, transport.ErrTooLarge)
	require.NotErrorIs(t, err, transport.ErrRefused)
	require.False(t, transport.IsPermanent(err), "an answer is not a local verdict")
	var re *transport.ReplyError
	require.ErrorAs(t, fmt.Errorf("send: %w", err), &re)
	require.Equal(t, uint64(4096), re.Ack.Limit)
	require.Equal(t, "transport: receiver rejected the batch: seq 5 (too large; the receiver's limit is 4096 bytes): frame of 9000 bytes", err.Error())

	err = transport.AckError(transport.Ack{Seq: 6, Status: transport.StatusRejected, Message: "unknown tenant", Reason: transport.ReasonRefused})
	require.ErrorIs(t, err, transport.ErrRefused)
	require.NotErrorIs(t, err, transport.ErrTooLarge)
	require.Equal(t, "transport: receiver rejected the batch: seq 6 (refused): unknown tenant", err.Error())

	err = transport.AckError(transport.Ack{Seq: 7, Status: transport.StatusRetry, Message: "sink down"})
	require.ErrorIs(t, err, transport.ErrRetry)
	require.NotErrorIs(t, err, transport.ErrRejected)
	require.Equal(t, "transport: receiver asked to retry: seq 7: sink down", err.Error())
}

func TestPermanent(t *testing.T) {
	require.NoError(t, transport.Permanent(nil))
	base := fmt.Errorf("nanomsg: send seq 1: %w", transport.ErrTooLarge)
	p := transport.Permanent(base)
	require.True(t, transport.IsPermanent(p))
	require.True(t, transport.IsPermanent(fmt.Errorf("agent: %w", p)))
	require.ErrorIs(t, p, transport.ErrTooLarge)
	require.Equal(t, base.Error(), p.Error())
	require.False(t, transport.IsPermanent(base))
	require.False(t, transport.IsPermanent(context.DeadlineExceeded))
	require.True(t, transport.IsPermanent(errors.Join(p, transport.Permanent(errors.New("x")))))
	require.False(t, transport.IsPermanent(errors.Join(p, errors.New("x"))), "one transient error makes the whole transient")
}

func TestMeasurementSize(t *testing.T) {
	now := time.Now()
	env := transport.Envelope{Tenant: "t", Agent: "a", Seq: 1 << 40, SentAt: now, Host: "h"}
	head, err := transport.AppendEnvelope(nil, &env)
	require.NoError(t, err)
	sum := len(head)
	for i := range 300 {
		m := meter.Measurement{Name: strings.Repeat("n", i%200+1), Kind: meter.Gauge, Value: float64(i), Time: now,
			Host: []string{"h", "other", ""}[i%3], Labels: []meter.Label{{Key: "k", Value: strings.Repeat("v", i)}}}
		env.Measurements = append(env.Measurements, m)
		sum += transport.MeasurementSize(&m, env.Host)
	}
	b, err := transport.AppendEnvelope(nil, &env)
	require.NoError(t, err)
	require.Equal(t, len(b), sum)
}

// TestLabelLengths crosses the one-byte-length shape the codec writes and
// reads on a fast path with the general one: key and value lengths around
// the 128-byte boundary of the label message, each checked byte for byte
// against the generated code and decoded back.
func TestLabelLengths(t *testing.T) {
	lengths := []int{0, 1, 2, 60, 61, 62, 63, 64, 120, 121, 122, 123, 124, 125, 126, 127, 128, 200}
	var d transport.Decoder
	var got transport.Envelope
	for _, k := range lengths {
		for _, v := range lengths {
			env := transport.Envelope{Version: transport.Version, Host: "h", Measurements: []meter.Measurement{{
				Name: "m", Kind: meter.Gauge, Value: 1, Time: time.Unix(1, 0),
				Labels: []meter.Label{{Key: strings.Repeat("k", k), Value: strings.Repeat("v", v)}, {Key: "b", Value: "c"}},
			}}}
			buf, err := transport.AppendEnvelope(nil, &env)
			require.NoError(t, err)
			pb, err := proto.Marshal(toPB(&env))
			require.NoError(t, err)
			require.Equal(t, string(pb), string(buf), "key %d, value %d bytes", k, v)
			require.NoError(t, d.Decode(buf, &got), "key %d, value %d bytes", k, v)
			require.Equal(t, normalize(env), decoded(&got), "key %d, value %d bytes", k, v)
		}
	}
}

// TestLabelShapes decodes label messages other encoders may write (fields
// in another order, repeated, unknown, with long varints) as the generated
// code does.
func TestLabelShapes(t *testing.T) {
	for _, c := range []struct {
		name  string
		label []byte // the Label message
	}{
		{"value first", []byte{0x12, 1, 'v', 0x0a, 1, 'k'}},
		{"key only", []byte{0x0a, 2, 'k', 'k'}},
		{"value only", []byte{0x12, 2, 'v', 'v'}},
		{"key twice", []byte{0x0a, 1, 'a', 0x0a, 1, 'k'}},
		{"two-byte key length", []byte{0x0a, 0x81, 0x00, 'k', 0x12, 1, 'v'}},
		{"unknown field after", []byte{0x0a, 1, 'k', 0x12, 1, 'v', 0x18, 7}},
		{"unknown field between", []byte{0x0a, 1, 'k', 0x18, 7, 0x12, 1, 'v'}},
		{"empty", nil},
		{"empty key and value", []byte{0x0a, 0, 0x12, 0}},
	} {
		frame := []byte{0x08, byte(transport.Version), 0x32, 1, 'h'} // version, host
		m := []byte{0x0a, 1, 'm', 0x52, byte(len(c.label))}          // name, labels
		m = append(m, c.label...)
		frame = append(append(frame, 0x3a, byte(len(m))), m...)
		var p wirepb.Envelope
		require.NoError(t, proto.Unmarshal(frame, &p), c.name)
		var d transport.Decoder
		var got transport.Envelope
		require.NoError(t, d.Decode(frame, &got), c.name)
		require.Equal(t, fromPB(&p), decoded(&got), c.name)
	}
}
