package transport

// Regenerate the protobuf types used to test this codec (package
// internal/wirepb) after editing envelope.proto, with protoc and
// protoc-gen-go v1.36.12 on PATH:
//
//	go generate ./transport
//
//go:generate protoc --proto_path=. --go_out=internal/wirepb --go_opt=paths=source_relative envelope.proto

import (
	"fmt"
	"math"
	"time"

	"github.com/meterkit/meter"
	"google.golang.org/protobuf/encoding/protowire"
)

// Tags of envelope.proto's fields: every field number is below 16, so each
// tag is one byte, (number << 3) | wire type.
const (
	tagEnvVersion      = 1<<3 | byte(protowire.VarintType)
	tagEnvTenant       = 2<<3 | byte(protowire.BytesType)
	tagEnvAgent        = 3<<3 | byte(protowire.BytesType)
	tagEnvSeq          = 4<<3 | byte(protowire.VarintType)
	tagEnvSentAt       = 5<<3 | byte(protowire.Fixed64Type)
	tagEnvHost         = 6<<3 | byte(protowire.BytesType)
	tagEnvMeasurements = 7<<3 | byte(protowire.BytesType)
	tagEnvSealed       = 8<<3 | byte(protowire.BytesType)
	tagEnvAuth         = 9<<3 | byte(protowire.BytesType)

	tagMName       = 1<<3 | byte(protowire.BytesType)
	tagMKind       = 2<<3 | byte(protowire.VarintType)
	tagMUnit       = 3<<3 | byte(protowire.BytesType)
	tagMValue      = 4<<3 | byte(protowire.Fixed64Type)
	tagMTime       = 5<<3 | byte(protowire.Fixed64Type)
	tagMHost       = 6<<3 | byte(protowire.BytesType)
	tagMResourceID = 7<<3 | byte(protowire.BytesType)
	tagMProjectID  = 8<<3 | byte(protowire.BytesType)
	tagMUserID     = 9<<3 | byte(protowire.BytesType)
	tagMLabels     = 10<<3 | byte(protowire.BytesType)
	tagMState      = 11<<3 | byte(protowire.VarintType)

	tagLabelKey   = 1<<3 | byte(protowire.BytesType)
	tagLabelValue = 2<<3 | byte(protowire.BytesType)

	tagAckSeq     = 1<<3 | byte(protowire.VarintType)
	tagAckStatus  = 2<<3 | byte(protowire.VarintType)
	tagAckMessage = 3<<3 | byte(protowire.BytesType)
	tagAckReason  = 4<<3 | byte(protowire.VarintType)
	tagAckLimit   = 5<<3 | byte(protowire.VarintType)
	tagAckVersion = 6<<3 | byte(protowire.VarintType)
)

// Times travel as int64 nanoseconds since the Unix epoch: from
// minUnixSec+minUnixNsec to maxUnixSec+maxUnixNsec (about 1678 to 2262).
const (
	minUnixSec  = math.MinInt64/1_000_000_000 - 1 // -9223372037
	minUnixNsec = math.MinInt64 - minUnixSec*1_000_000_000
	maxUnixSec  = math.MaxInt64 / 1_000_000_000
	maxUnixNsec = math.MaxInt64 - maxUnixSec*1_000_000_000
)

// unixNanos converts t for the wire: the zero Time is 0, and ok is false
// when t is outside the range int64 nanoseconds can hold.
func unixNanos(t time.Time) (n int64, ok bool) {
	if t.IsZero() {
		return 0, true
	}
	s := t.Unix()
	if s <= minUnixSec || s >= maxUnixSec {
		ns := t.Nanosecond()
		if s < minUnixSec || s > maxUnixSec || s == minUnixSec && ns < minUnixNsec || s == maxUnixSec && ns > maxUnixNsec {
			return 0, false
		}
	}
	return t.UnixNano(), true
}

// fromUnixNanos is the inverse of unixNanos: 0 is the zero Time, and other
// times are in UTC.
func fromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// AppendEnvelope appends the wire encoding of env (the message Envelope of
// envelope.proto) to dst and returns the extended slice. A zero
// env.Version is written as Version. Measurements whose Host equals
// env.Host are written without a host. With env.Version 2 or more, a
// measurement whose last label is meter.StateLabel with a level's name
// (ok, warning, alert, critical, stale) has that label written in the
// state field, which decodes as the same label in the same place.
//
// AppendEnvelope does not validate: it writes whatever env holds (an unknown
// Kind, an empty name, a NaN value, invalid UTF-8), and the receiver's
// Decode and meter.Measurement.Validate decide. It fails only for what the
// format cannot carry: a time outside the years 1678-2262 (int64
// nanoseconds). On error it returns dst unchanged, with an error naming the
// measurement. A time exactly at the Unix epoch is written as 0 and decodes
// as the zero time.Time. Appending to a buffer with enough capacity does not
// allocate.
func AppendEnvelope(dst []byte, env *Envelope) ([]byte, error) {
	start := len(dst)
	v := env.Version
	if v == 0 {
		v = Version
	}
	dst = append(dst, tagEnvVersion)
	dst = appendVarint(dst, uint64(v))
	dst = appendString(dst, tagEnvTenant, env.Tenant)
	dst = appendString(dst, tagEnvAgent, env.Agent)
	if env.Seq != 0 {
		dst = append(dst, tagEnvSeq)
		dst = appendVarint(dst, env.Seq)
	}
	sentAt, ok := unixNanos(env.SentAt)
	if !ok {
		return dst[:start], fmt.Errorf("transport: encode envelope: SentAt %v is outside the years 1678-2262", env.SentAt)
	}
	if sentAt != 0 {
		dst = append(dst, tagEnvSentAt)
		dst = protowire.AppendFixed64(dst, uint64(sentAt))
	}
	dst = appendString(dst, tagEnvHost, env.Host)
	dst, bad := appendMeasurements(dst, env.Measurements, env.Host, v)
	if bad >= 0 {
		m := &env.Measurements[bad]
		return dst[:start], fmt.Errorf("transport: encode envelope: Measurements[%d] (%q): Time %v is outside the years 1678-2262", bad, m.Name, m.Time)
	}
	if len(env.Sealed) > 0 {
		dst = append(dst, tagEnvSealed)
		dst = protowire.AppendBytes(dst, env.Sealed)
	}
	if len(env.Auth) > 0 {
		dst = append(dst, tagEnvAuth)
		dst = protowire.AppendBytes(dst, env.Auth)
	}
	return dst, nil
}

// appendVarint is protowire.AppendVarint with an inlined path for the
// one-byte values most lengths are.
func appendVarint(dst []byte, v uint64) []byte {
	if v < 0x80 {
		return append(dst, byte(v))
	}
	return protowire.AppendVarint(dst, v)
}

// appendString appends a string field, or nothing for an empty string (the
// proto3 default).
func appendString(dst []byte, tag byte, s string) []byte {
	if s == "" {
		return dst
	}
	dst = append(dst, tag)
	dst = appendVarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// stringSize is the encoded size of a string field written by appendString.
func stringSize(s string) int {
	if s == "" {
		return 0
	}
	return 1 + protowire.SizeVarint(uint64(len(s))) + len(s)
}

// appendMeasurements appends ms as the measurements fields of an envelope
// of the given version whose host is host. It returns the index of the
// first measurement whose time the format cannot carry, with what it
// appended before it, or -1.
func appendMeasurements(dst []byte, ms []meter.Measurement, host string, version uint32) ([]byte, int) {
	for i := range ms {
		m := &ms[i]
		t, ok := unixNanos(m.Time)
		if !ok {
			return dst, i
		}
		st := stateIn(m, version)
		dst = append(dst, tagEnvMeasurements)
		dst = appendVarint(dst, uint64(measurementSize(m, host, t, st)))
		dst = appendMeasurement(dst, m, host, t, st)
	}
	return dst, -1
}

// stateIn is the state field that carries m's last label in an envelope of
// the given version: none before version 2.
func stateIn(m *meter.Measurement, version uint32) uint64 {
	if version < 2 {
		return 0
	}
	return stateOf(m)
}

// stateOf returns the state field (envelope.proto, Measurement.state) that
// carries m's last label: 1 to 5 for meter.StateLabel with the name of a
// level, 0 when m's last label is another (or m has none). A switch
// rather than meter.ParseLevel: this runs twice for every measurement
// levels checked, and the call costs about 5 ns more each time.
func stateOf(m *meter.Measurement) uint64 {
	n := len(m.Labels)
	if n == 0 || m.Labels[n-1].Key != meter.StateLabel {
		return 0
	}
	switch m.Labels[n-1].Value {
	case meter.StateOK:
		return 1
	case meter.StateWarning:
		return 2
	case meter.StateAlert:
		return 3
	case meter.StateCritical:
		return 4
	case meter.StateStale:
		return 5
	}
	return 0
}

// stateLabel is the label a state field (1 to 5) stands for.
func stateLabel(st uint64) meter.Label {
	return meter.Label{Key: meter.StateLabel, Value: meter.Level(st - 1).String()}
}

// maxState is the largest state field value.
const maxState = uint64(meter.LevelStale) + 1

// measurementSize is the length of the body appendMeasurement writes; st
// is the state field that carries m's last label, or 0.
func measurementSize(m *meter.Measurement, defHost string, t int64, st uint64) int {
	n := stringSize(m.Name) + stringSize(m.Unit) + stringSize(m.ResourceID) +
		stringSize(m.ProjectID) + stringSize(m.UserID)
	if m.Kind != 0 {
		n += 2 // a Kind is a uint8, below 128: one byte of varint
		if m.Kind >= 0x80 {
			n++
		}
	}
	if math.Float64bits(m.Value) != 0 {
		n += 9
	}
	if t != 0 {
		n += 9
	}
	if m.Host != defHost {
		n += 1 + protowire.SizeVarint(uint64(len(m.Host))) + len(m.Host)
	}
	labels := m.Labels
	if st != 0 {
		labels = labels[:len(labels)-1]
		n += 2
	}
	for i := range labels {
		l := &labels[i]
		ls := stringSize(l.Key) + stringSize(l.Value)
		n += 1 + protowire.SizeVarint(uint64(ls)) + ls
	}
	return n
}

// appendMeasurement appends the body of a Measurement message, in field
// number order, as protobuf encoders do; st is the state field that
// carries m's last label, or 0.
func appendMeasurement(dst []byte, m *meter.Measurement, defHost string, t int64, st uint64) []byte {
	dst = appendString(dst, tagMName, m.Name)
	if m.Kind != 0 {
		dst = append(dst, tagMKind)
		dst = appendVarint(dst, uint64(m.Kind))
	}
	dst = appendString(dst, tagMUnit, m.Unit)
	if bits := math.Float64bits(m.Value); bits != 0 {
		dst = append(dst, tagMValue)
		dst = protowire.AppendFixed64(dst, bits)
	}
	if t != 0 {
		dst = append(dst, tagMTime)
		dst = protowire.AppendFixed64(dst, uint64(t))
	}
	if m.Host != defHost {
		// host is an optional field: written even when empty, so that an
		// empty host is told apart from the envelope's default.
		dst = append(dst, tagMHost)
		dst = appendVarint(dst, uint64(len(m.Host)))
		dst = append(dst, m.Host...)
	}
	dst = appendString(dst, tagMResourceID, m.ResourceID)
	dst = appendString(dst, tagMProjectID, m.ProjectID)
	dst = appendString(dst, tagMUserID, m.UserID)
	labels := m.Labels
	if st != 0 {
		labels = labels[:len(labels)-1]
	}
	for i := range labels {
		l := &labels[i]
		if k, v := len(l.Key), len(l.Value); k != 0 && v != 0 && 4+k+v < 0x80 {
			// The usual label, short key and value: every length is
			// one byte.
			dst = append(dst, tagMLabels, byte(4+k+v), tagLabelKey, byte(k))
			dst = append(dst, l.Key...)
			dst = append(dst, tagLabelValue, byte(v))
			dst = append(dst, l.Value...)
			continue
		}
		dst = append(dst, tagMLabels)
		dst = appendVarint(dst, uint64(stringSize(l.Key)+stringSize(l.Value)))
		dst = appendString(dst, tagLabelKey, l.Key)
		dst = appendString(dst, tagLabelValue, l.Value)
	}
	if st != 0 {
		dst = append(dst, tagMState, byte(st))
	}
	return dst
}

// AppendAck appends the wire encoding of a (the message Ack of
// envelope.proto) to dst and returns the extended slice.
func AppendAck(dst []byte, a Ack) []byte {
	if a.Seq != 0 {
		dst = append(dst, tagAckSeq)
		dst = appendVarint(dst, a.Seq)
	}
	if a.Status != 0 {
		dst = append(dst, tagAckStatus)
		dst = appendVarint(dst, uint64(a.Status))
	}
	dst = appendString(dst, tagAckMessage, a.Message)
	if a.Reason != 0 {
		dst = append(dst, tagAckReason)
		dst = appendVarint(dst, uint64(a.Reason))
	}
	if a.Limit != 0 {
		dst = append(dst, tagAckLimit)
		dst = appendVarint(dst, a.Limit)
	}
	if a.Version != 0 {
		dst = append(dst, tagAckVersion)
		dst = appendVarint(dst, uint64(a.Version))
	}
	return dst
}

// MeasurementSize is how many bytes m adds to the encoding of an envelope
// whose Host is host (AppendEnvelope): its field header and body. With the
// size of the envelope without measurements, it bounds a batch's frame
// before encoding it. It is 0 for a measurement AppendEnvelope cannot
// encode (a time outside the years 1678-2262).
func MeasurementSize(m *meter.Measurement, host string) int {
	return MeasurementSizeFor(m, host, Version)
}

// MeasurementSizeFor is MeasurementSize in an envelope of the given
// version: with version 2 or more, a measurement whose last label is
// meterkit.state with a level's name is 20 bytes or so smaller. It is
// never larger than MeasurementSize.
func MeasurementSizeFor(m *meter.Measurement, host string, version uint32) int {
	t, ok := unixNanos(m.Time)
	if !ok {
		return 0
	}
	n := measurementSize(m, host, t, stateIn(m, version))
	return 1 + protowire.SizeVarint(uint64(n)) + n
}
