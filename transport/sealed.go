package transport

import (
	"fmt"
	"strconv"

	"github.com/meterkit/meter"
	"google.golang.org/protobuf/encoding/protowire"
)

// This file holds the two halves of the codec that sealing needs: the
// measurements of an envelope encoded on their own, as the plaintext that
// package transport/seal encrypts into Envelope.Sealed, and decoded back.
// The plaintext is a run of Envelope.measurements fields (number 7), the
// same bytes AppendEnvelope writes for them; envelope.proto calls it
// SealedPayload.

// AppendMeasurements appends ms encoded as the measurements fields of an
// Envelope whose host is host (a measurement whose Host equals host is
// written without one), and nothing else, to dst. Like AppendEnvelope it
// does not validate, and fails only for a time outside the years
// 1678-2262, returning dst unchanged.
func AppendMeasurements(dst []byte, ms []meter.Measurement, host string) ([]byte, error) {
	return AppendMeasurementsFor(dst, ms, host, Version)
}

// AppendMeasurementsFor is AppendMeasurements for an envelope of the given
// version: with 2 or more, a measurement's last label meterkit.state with
// a level's name goes in the state field, as AppendEnvelope writes it.
func AppendMeasurementsFor(dst []byte, ms []meter.Measurement, host string, version uint32) ([]byte, error) {
	start := len(dst)
	dst, bad := appendMeasurements(dst, ms, host, version)
	if bad >= 0 {
		m := &ms[bad]
		return dst[:start], fmt.Errorf("transport: encode measurements: [%d] (%q): Time %v is outside the years 1678-2262", bad, m.Name, m.Time)
	}
	return dst, nil
}

// DecodeMeasurements decodes payload, written by AppendMeasurements, into
// env.Measurements; a measurement without a host gets env.Host. It leaves
// the rest of env alone, skips fields other than measurements, and checks
// d.Limits (frame size, measurements, labels, string length) before
// allocating what payload claims to hold, as Decode does.
//
// The measurements replace those env held, reusing their backing array, and
// share memory with the Decoder as after Decode: they stay valid until the
// next Decode or DecodeMeasurements on d. Decode an envelope and then its
// sealed payload with the same Decoder only when the envelope itself holds
// no measurements. Errors wrap ErrMalformed or ErrTooLarge and name the
// byte offset in payload. DecodeMeasurements never panics.
func (d *Decoder) DecodeMeasurements(payload []byte, env *Envelope) error {
	lim := d.Limits.orDefault()
	st := decodeState{b: payload, lim: lim, d: d}
	if len(payload) > lim.MaxFrameSize {
		return st.fail(ErrTooLarge, "sealed", -1, 0,
			strconv.Itoa(len(payload))+" bytes, over the limit of "+strconv.Itoa(lim.MaxFrameSize))
	}
	// First pass: check the structure and count, before allocating.
	count := 0
	for off := 0; off < len(payload); {
		num, typ, n := consumeTag(payload[off:])
		if n < 0 {
			return st.wireErr("sealed", -1, off, n)
		}
		tagOff := off
		off += n
		if num != 7 {
			n := protowire.ConsumeFieldValue(num, typ, payload[off:])
			if n < 0 {
				return st.wireErr("sealed.field "+strconv.Itoa(int(num)), -1, off, n)
			}
			off += n
			continue
		}
		if typ != protowire.BytesType {
			return st.typeErr("measurements", -1, tagOff, typ)
		}
		_, n = consumeBytes(payload[off:])
		if n < 0 {
			return st.wireErr("measurements", -1, off, n)
		}
		if count >= lim.MaxMeasurements {
			return st.fail(ErrTooLarge, "measurements", -1, tagOff,
				"more than "+strconv.Itoa(lim.MaxMeasurements)+" measurements")
		}
		count++
		off += n
	}

	ms := env.Measurements[:0]
	if cap(ms) < count {
		ms = make([]meter.Measurement, 0, count)
	}
	d.labels = d.labels[:0]
	st.s = string(payload)
	for off := 0; off < len(payload); {
		num, typ, n := consumeTag(payload[off:])
		if n < 0 {
			return st.wireErr("sealed", -1, off, n)
		}
		off += n
		if num != 7 {
			n := protowire.ConsumeFieldValue(num, typ, payload[off:])
			if n < 0 {
				return st.wireErr("sealed", -1, off, n)
			}
			off += n
			continue
		}
		v, n := consumeBytes(payload[off:])
		if n < 0 {
			return st.wireErr("measurements", -1, off, n)
		}
		start := off + n - len(v)
		ms = append(ms, meter.Measurement{})
		if err := st.measurement(&ms[len(ms)-1], len(ms)-1, start, start+len(v), env.Host); err != nil {
			env.Measurements = ms[:0]
			return err
		}
		off += n
	}
	env.Measurements = ms
	return nil
}
