package transport

import (
	"errors"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/meterkit/meter"
	"google.golang.org/protobuf/encoding/protowire"
)

// Limits bound what decoding one frame may cost a receiver. A zero field
// means its default (see DefaultLimits), so the zero Limits is usable.
// Limits are checked before any memory is allocated for what a frame claims
// to hold.
//
// The limits bound cost, not validity: a 300-byte name is within
// MaxStringLen and decodes, and meter.Measurement.Validate then rejects
// that one measurement.
type Limits struct {
	// MaxFrameSize is the largest frame accepted, in bytes. Default 4 MiB.
	MaxFrameSize int
	// MaxMeasurements is the most measurements one envelope may hold.
	// Default 100,000.
	MaxMeasurements int
	// MaxLabels is the most labels one measurement may have. Default
	// meter.MaxLabels.
	MaxLabels int
	// MaxStringLen is the longest string field accepted, in bytes: tenant,
	// agent, host, and every string of a measurement and its labels.
	// Default meter.MaxLabelValueLen, the largest of the meter package's
	// string limits. It does not apply to Sealed and Auth, which only the
	// frame size bounds.
	MaxStringLen int
}

// DefaultLimits returns the limits a zero Limits stands for.
func DefaultLimits() Limits {
	return Limits{
		MaxFrameSize:    4 << 20,
		MaxMeasurements: 100_000,
		MaxLabels:       meter.MaxLabels,
		MaxStringLen:    meter.MaxLabelValueLen,
	}
}

// orDefault returns l with every zero or negative field set to its default.
func (l Limits) orDefault() Limits {
	def := DefaultLimits()
	if l.MaxFrameSize <= 0 {
		l.MaxFrameSize = def.MaxFrameSize
	}
	if l.MaxMeasurements <= 0 {
		l.MaxMeasurements = def.MaxMeasurements
	}
	if l.MaxLabels <= 0 {
		l.MaxLabels = def.MaxLabels
	}
	if l.MaxStringLen <= 0 {
		l.MaxStringLen = def.MaxStringLen
	}
	return l
}

// Decoder decodes envelopes, reusing its memory from one frame to the next:
// once warm, Decode allocates once per frame (one string holding a copy of
// the frame) and nothing per measurement. A zero Decoder is ready to use,
// with the default limits. A Decoder must not be used by two goroutines at
// once; a receiver keeps one per concurrent delivery.
type Decoder struct {
	// Limits bound what one frame may cost; zero fields mean the defaults.
	Limits Limits

	labels []meter.Label // arena the decoded measurements' Labels point into
	bytes  []byte        // holds the copies of Sealed and Auth
}

// Decode decodes frame, the wire encoding of one Envelope, into env.
//
// Decode overwrites all of env. It reuses the backing array of
// env.Measurements when large enough, and the decoded measurements' Labels,
// env.Sealed and env.Auth point into memory the Decoder owns: all of them
// stay valid until the next Decode on the same Decoder. Nothing in env
// refers to frame, which the caller may reuse as soon as Decode returns.
// The decoded strings are substrings of one copy of the frame: they never
// change, but keeping any of them keeps the whole copy reachable, so clone
// a string (strings.Clone) to keep it longer than the batch.
//
// A measurement without a host gets env.Host. Decode skips fields it does
// not know. It does not validate measurements (see
// meter.Measurement.Validate) and does not check UTF-8. It fails, with an
// error naming the field and the byte offset, for a frame that is not a
// well-formed Envelope (wrapping ErrMalformed: truncated data, a bad varint,
// a wrong wire type, a missing version or one newer than MaxVersion, a
// kind beyond 255, a state beyond 5) or that exceeds d.Limits (wrapping ErrTooLarge). After an
// error env holds no useful data. Decode never panics.
func (d *Decoder) Decode(frame []byte, env *Envelope) error {
	lim := d.Limits.orDefault()
	if len(frame) > lim.MaxFrameSize {
		return &frameError{sentinel: ErrTooLarge, field: "frame", m: -1, off: 0,
			msg: strconv.Itoa(len(frame)) + " bytes, over the limit of " + strconv.Itoa(lim.MaxFrameSize)}
	}
	// First pass: check the envelope's own fields, read the version and
	// count the measurements, so that nothing is allocated for a frame
	// that is too large, malformed at the top level or of a newer version.
	h, err := scanEnvelope(frame, &lim)
	if err != nil {
		return err
	}

	ms := env.Measurements[:0]
	if cap(ms) < h.count {
		// h.count was counted, not read from the frame: it is within
		// the limit and below len(frame)/2.
		ms = make([]meter.Measurement, 0, h.count)
	}
	d.labels = d.labels[:0]

	// One copy of the whole frame; every decoded string is a substring of it.
	st := decodeState{s: string(frame), b: frame, lim: lim, d: d}
	// The envelope's host is known before its measurements are decoded,
	// wherever it is in the frame.
	*env = Envelope{Version: h.version, Host: st.s[h.host[0]:h.host[1]]}
	var sealed, auth [2]int // offsets of the last Sealed and Auth fields
	// Second pass. The top-level structure was checked by scanEnvelope, so
	// the errors below cannot happen; they are kept so as never to panic.
	for off := 0; off < len(frame); {
		num, typ, n := consumeTag(frame[off:])
		if n < 0 {
			return st.wireErr("envelope", -1, off, n)
		}
		off += n
		switch num {
		case 2, 3:
			v, n := consumeBytes(frame[off:])
			if n < 0 {
				return st.wireErr(envFieldNames[num], -1, off, n)
			}
			s := st.s[off+n-len(v) : off+n]
			if num == 2 {
				env.Tenant = s
			} else {
				env.Agent = s
			}
			off += n
		case 4:
			v, n := protowire.ConsumeVarint(frame[off:])
			if n < 0 {
				return st.wireErr("seq", -1, off, n)
			}
			env.Seq = v
			off += n
		case 5:
			v, n := protowire.ConsumeFixed64(frame[off:])
			if n < 0 {
				return st.wireErr("sent_at", -1, off, n)
			}
			env.SentAt = fromUnixNanos(int64(v))
			off += n
		case 7, 8, 9:
			v, n := consumeBytes(frame[off:])
			if n < 0 {
				return st.wireErr(envFieldNames[num], -1, off, n)
			}
			start := off + n - len(v)
			switch num {
			case 7:
				ms = append(ms, meter.Measurement{})
				if err := st.measurement(&ms[len(ms)-1], len(ms)-1, start, start+len(v), env.Host); err != nil {
					return err
				}
			case 8:
				sealed = [2]int{start, start + len(v)}
			case 9:
				auth = [2]int{start, start + len(v)}
			}
			off += n
		default: // version and host (read by scanEnvelope), unknown fields
			n := protowire.ConsumeFieldValue(num, typ, frame[off:])
			if n < 0 {
				return st.wireErr("envelope", -1, off, n)
			}
			off += n
		}
	}
	env.Measurements = ms
	if sealed[1] > sealed[0] || auth[1] > auth[0] {
		b := append(d.bytes[:0], frame[sealed[0]:sealed[1]]...)
		b = append(b, frame[auth[0]:auth[1]]...)
		d.bytes = b
		ns := sealed[1] - sealed[0]
		if ns > 0 {
			env.Sealed = b[:ns:ns]
		}
		if len(b) > ns {
			env.Auth = b[ns:len(b):len(b)]
		}
	}
	return nil
}

var envFieldNames = [...]string{
	1: "version", 2: "tenant", 3: "agent", 4: "seq", 5: "sent_at",
	6: "host", 7: "measurements", 8: "sealed", 9: "auth",
}

// header is what scanEnvelope learns of an envelope.
type header struct {
	version uint32
	count   int    // of measurements
	host    [2]int // offsets of the last host field's value in the frame
}

// scanEnvelope checks the top-level fields of frame, without descending
// into measurements, and returns its version, number of measurements and
// where its host is.
func scanEnvelope(frame []byte, lim *Limits) (h header, err error) {
	var st decodeState // only for errors
	sawVersion := false
	for off := 0; off < len(frame); {
		num, typ, n := consumeTag(frame[off:])
		if n < 0 {
			return header{}, st.wireErr("envelope", -1, off, n)
		}
		tagOff := off
		off += n
		switch num {
		case 1, 4:
			if typ != protowire.VarintType {
				return header{}, st.typeErr(envFieldNames[num], -1, tagOff, typ)
			}
			v, n := protowire.ConsumeVarint(frame[off:])
			if n < 0 {
				return header{}, st.wireErr(envFieldNames[num], -1, off, n)
			}
			if num == 1 {
				if v > math.MaxUint32 {
					return header{}, st.fail(ErrMalformed, "version", -1, off, "version "+strconv.FormatUint(v, 10)+" overflows uint32")
				}
				h.version, sawVersion = uint32(v), true
			}
			off += n
		case 5:
			if typ != protowire.Fixed64Type {
				return header{}, st.typeErr("sent_at", -1, tagOff, typ)
			}
			_, n := protowire.ConsumeFixed64(frame[off:])
			if n < 0 {
				return header{}, st.wireErr("sent_at", -1, off, n)
			}
			off += n
		case 2, 3, 6, 7, 8, 9:
			if typ != protowire.BytesType {
				return header{}, st.typeErr(envFieldNames[num], -1, tagOff, typ)
			}
			v, n := consumeBytes(frame[off:])
			if n < 0 {
				return header{}, st.wireErr(envFieldNames[num], -1, off, n)
			}
			switch num {
			case 2, 3, 6:
				if len(v) > lim.MaxStringLen {
					return header{}, st.tooLong(envFieldNames[num], -1, off, len(v), lim.MaxStringLen)
				}
				if num == 6 {
					h.host = [2]int{off + n - len(v), off + n}
				}
			case 7:
				if h.count >= lim.MaxMeasurements {
					return header{}, st.fail(ErrTooLarge, "measurements", -1, tagOff,
						"more than "+strconv.Itoa(lim.MaxMeasurements)+" measurements")
				}
				h.count++
			}
			off += n
		default:
			n := protowire.ConsumeFieldValue(num, typ, frame[off:])
			if n < 0 {
				return header{}, st.wireErr("field "+strconv.Itoa(int(num)), -1, off, n)
			}
			off += n
		}
	}
	switch {
	case !sawVersion || h.version == 0:
		return header{}, st.fail(ErrMalformed, "version", -1, 0, "missing")
	case h.version > MaxVersion:
		return header{}, st.fail(ErrMalformed, "version", -1, 0,
			"version "+strconv.FormatUint(uint64(h.version), 10)+" is newer than "+strconv.Itoa(MaxVersion)+", the newest this decoder knows")
	}
	return h, nil
}

// decodeState is what decoding the measurements of one frame needs.
type decodeState struct {
	s   string // copy of b
	b   []byte // the frame
	lim Limits
	d   *Decoder
}

// measurement decodes the Measurement message in st.b[start:end] into m,
// whose index in the envelope is i; defHost is the envelope's host.
func (st *decodeState) measurement(m *meter.Measurement, i, start, end int, defHost string) error {
	b := st.b[:end]
	labels := len(st.d.labels)
	m.Host = defHost
	var state uint64 // the state field: the label meterkit.state, after the others
	for off := start; off < end; {
		var num protowire.Number
		var typ protowire.Type
		var n int
		if c := b[off]; c < 0x80 && c >= 1<<3 { // one-byte tag, field number > 0
			num, typ, n = protowire.Number(c>>3), protowire.Type(c&7), 1
		} else if num, typ, n = consumeTag(b[off:]); n < 0 {
			return st.wireErr("", i, off, n)
		}
		tagOff := off
		off += n
		switch num {
		case 1, 3, 6, 7, 8, 9: // strings
			if typ != protowire.BytesType {
				return st.typeErr(mFieldNames[num], i, tagOff, typ)
			}
			v, n := consumeBytes(b[off:])
			if n < 0 {
				return st.wireErr(mFieldNames[num], i, off, n)
			}
			if len(v) > st.lim.MaxStringLen {
				return st.tooLong(mFieldNames[num], i, off, len(v), st.lim.MaxStringLen)
			}
			off += n
			s := st.s[off-len(v) : off]
			switch num {
			case 1:
				m.Name = s
			case 3:
				m.Unit = s
			case 6:
				m.Host = s
			case 7:
				m.ResourceID = s
			case 8:
				m.ProjectID = s
			case 9:
				m.UserID = s
			}
		case 2:
			if typ != protowire.VarintType {
				return st.typeErr("kind", i, tagOff, typ)
			}
			v, n := protowire.ConsumeVarint(b[off:])
			if n < 0 {
				return st.wireErr("kind", i, off, n)
			}
			if v > math.MaxUint8 {
				return st.fail(ErrMalformed, "kind", i, off, "kind "+strconv.FormatInt(int64(v), 10)+" out of range 0-255")
			}
			m.Kind = meter.Kind(v)
			off += n
		case 4, 5:
			if typ != protowire.Fixed64Type {
				return st.typeErr(mFieldNames[num], i, tagOff, typ)
			}
			v, n := protowire.ConsumeFixed64(b[off:])
			if n < 0 {
				return st.wireErr(mFieldNames[num], i, off, n)
			}
			if num == 4 {
				m.Value = math.Float64frombits(v)
			} else {
				m.Time = fromUnixNanos(int64(v))
			}
			off += n
		case 10:
			if typ != protowire.BytesType {
				return st.typeErr("labels", i, tagOff, typ)
			}
			v, n := consumeBytes(b[off:])
			if n < 0 {
				return st.wireErr("labels", i, off, n)
			}
			if len(st.d.labels)-labels >= st.lim.MaxLabels {
				return st.fail(ErrTooLarge, "labels", i, tagOff, "more than "+strconv.Itoa(st.lim.MaxLabels)+" labels")
			}
			off += n
			// The usual label, as our encoder writes it: key then value,
			// each with a one-byte length.
			if k := len(v) - 4; k >= 0 && v[0] == tagLabelKey && v[1] < 0x80 && int(v[1]) <= k &&
				v[2+v[1]] == tagLabelValue && v[3+v[1]] < 0x80 && int(v[1])+int(v[3+v[1]]) == k && int(v[1]) <= st.lim.MaxStringLen &&
				int(v[3+v[1]]) <= st.lim.MaxStringLen {
				kl := int(v[1])
				ks := off - len(v) + 2
				vs := ks + kl + 2
				st.d.labels = append(st.d.labels, meter.Label{Key: st.s[ks : ks+kl], Value: st.s[vs:off]})
				continue
			}
			if err := st.label(i, len(st.d.labels)-labels, off-len(v), off); err != nil {
				return err
			}
		case 11:
			if typ != protowire.VarintType {
				return st.typeErr("state", i, tagOff, typ)
			}
			v, n := protowire.ConsumeVarint(b[off:])
			if n < 0 {
				return st.wireErr("state", i, off, n)
			}
			if v > maxState {
				return st.fail(ErrMalformed, "state", i, off, "state "+strconv.FormatUint(v, 10)+" unknown (0-"+strconv.FormatUint(maxState, 10)+")")
			}
			state = v // the last one wins, as for every field that is not repeated
			off += n
		default:
			n := protowire.ConsumeFieldValue(num, typ, b[off:])
			if n < 0 {
				return st.wireErr("field "+strconv.Itoa(int(num)), i, off, n)
			}
			off += n
		}
	}
	if state != 0 {
		if len(st.d.labels)-labels >= st.lim.MaxLabels {
			return st.fail(ErrTooLarge, "state", i, start, "more than "+strconv.Itoa(st.lim.MaxLabels)+" labels with meterkit.state")
		}
		st.d.labels = append(st.d.labels, stateLabel(state))
	}
	if k := len(st.d.labels); k > labels {
		m.Labels = st.d.labels[labels:k:k]
	}
	return nil
}

var mFieldNames = [...]string{
	1: "name", 2: "kind", 3: "unit", 4: "value", 5: "time", 6: "host",
	7: "resource_id", 8: "project_id", 9: "user_id", 10: "labels", 11: "state",
}

// label decodes the Label message in st.b[start:end], label j of
// measurement i, and appends it to the Decoder's label arena.
func (st *decodeState) label(i, j, start, end int) error {
	b := st.b[:end]
	var l meter.Label
	for off := start; off < end; {
		num, typ, n := consumeTag(b[off:])
		if n < 0 {
			return st.wireErr(labelField(j, ""), i, off, n)
		}
		tagOff := off
		off += n
		switch num {
		case 1, 2:
			name := "key"
			if num == 2 {
				name = "value"
			}
			if typ != protowire.BytesType {
				return st.typeErr(labelField(j, name), i, tagOff, typ)
			}
			v, n := consumeBytes(b[off:])
			if n < 0 {
				return st.wireErr(labelField(j, name), i, off, n)
			}
			if len(v) > st.lim.MaxStringLen {
				return st.tooLong(labelField(j, name), i, off, len(v), st.lim.MaxStringLen)
			}
			off += n
			if num == 1 {
				l.Key = st.s[off-len(v) : off]
			} else {
				l.Value = st.s[off-len(v) : off]
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b[off:])
			if n < 0 {
				return st.wireErr(labelField(j, "field "+strconv.Itoa(int(num))), i, off, n)
			}
			off += n
		}
	}
	st.d.labels = append(st.d.labels, l)
	return nil
}

// labelField names field f of label j, for errors.
func labelField(j int, f string) string {
	s := "labels[" + strconv.Itoa(j) + "]"
	if f != "" {
		s += "." + f
	}
	return s
}

// consumeTag is protowire.ConsumeTag with a fast path for one-byte tags.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	if len(b) > 0 && b[0] < 0x80 && b[0] >= 1<<3 {
		return protowire.Number(b[0] >> 3), protowire.Type(b[0] & 7), 1
	}
	return protowire.ConsumeTag(b)
}

// consumeBytes is protowire.ConsumeBytes with an inlined path for values
// shorter than 128 bytes.
func consumeBytes(b []byte) ([]byte, int) {
	if len(b) > 0 {
		if n := int(b[0]); n < 0x80 && n < len(b) {
			return b[1 : 1+n], 1 + n
		}
	}
	return protowire.ConsumeBytes(b)
}

// DecodeAck decodes the wire encoding of an Ack. Unknown fields are
// skipped; a Reason beyond 255 is read as ReasonNone. The Message is a copy: b may be reused. A status beyond the
// three known ones is returned as it is (AckError reports it); one beyond
// 255, or bytes that are not a well-formed Ack, give an error wrapping
// ErrMalformed.
func DecodeAck(b []byte) (Ack, error) {
	var a Ack
	var st decodeState
	for off := 0; off < len(b); {
		num, typ, n := consumeTag(b[off:])
		if n < 0 {
			return Ack{}, st.wireErr("ack", -1, off, n)
		}
		tagOff := off
		off += n
		switch num {
		case 1, 2, 4, 5, 6:
			name := [...]string{1: "seq", 2: "status", 4: "reason", 5: "max_frame_size", 6: "version"}[num]
			if typ != protowire.VarintType {
				return Ack{}, st.typeErr("ack."+name, -1, tagOff, typ)
			}
			v, n := protowire.ConsumeVarint(b[off:])
			if n < 0 {
				return Ack{}, st.wireErr("ack."+name, -1, off, n)
			}
			switch num {
			case 1:
				a.Seq = v
			case 2:
				if v > math.MaxUint8 {
					return Ack{}, st.fail(ErrMalformed, "ack.status", -1, off, "status "+strconv.FormatInt(int64(v), 10)+" out of range 0-255")
				}
				a.Status = Status(v)
			case 4:
				// A reason this release does not know, beyond 255 too, is
				// read as none: the status alone decides.
				if v <= math.MaxUint8 {
					a.Reason = Reason(v)
				}
			case 5:
				a.Limit = v
			case 6:
				a.Version = uint32(v) // as protobuf reads a uint32
			}
			off += n
		case 3:
			if typ != protowire.BytesType {
				return Ack{}, st.typeErr("ack.message", -1, tagOff, typ)
			}
			v, n := consumeBytes(b[off:])
			if n < 0 {
				return Ack{}, st.wireErr("ack.message", -1, off, n)
			}
			a.Message = string(v)
			off += n
		default:
			n := protowire.ConsumeFieldValue(num, typ, b[off:])
			if n < 0 {
				return Ack{}, st.wireErr("ack.field "+strconv.Itoa(int(num)), -1, off, n)
			}
			off += n
		}
	}
	return a, nil
}

// frameError is a decoding error: which field, where, and what is wrong.
type frameError struct {
	sentinel error  // ErrMalformed or ErrTooLarge
	field    string // proto field name, "" for the measurement itself
	m        int    // index of the measurement, or -1 outside measurements
	off      int    // byte offset in the frame
	msg      string
}

func (e *frameError) Error() string {
	path := e.field
	if e.m >= 0 {
		path = "measurements[" + strconv.Itoa(e.m) + "]"
		if e.field != "" {
			path += "." + e.field
		}
	}
	return e.sentinel.Error() + ": " + path + " at byte " + strconv.Itoa(e.off) + ": " + e.msg
}

// Unwrap makes errors.Is(err, ErrMalformed) or errors.Is(err, ErrTooLarge) true.
func (e *frameError) Unwrap() error { return e.sentinel }

func (st *decodeState) fail(sentinel error, field string, m, off int, msg string) error {
	return &frameError{sentinel: sentinel, field: field, m: m, off: off, msg: msg}
}

// wireErr reports the protowire error code n (negative) met at off.
func (st *decodeState) wireErr(field string, m, off, n int) error {
	err := protowire.ParseError(n)
	msg := "truncated"
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		// Such as "invalid field number" or "variable length integer
		// overflow", without protowire's prefix.
		msg = strings.TrimLeft(strings.TrimPrefix(err.Error(), "proto:"), " \u00a0")
	}
	return st.fail(ErrMalformed, field, m, off, msg)
}

func (st *decodeState) typeErr(field string, m, off int, typ protowire.Type) error {
	return st.fail(ErrMalformed, field, m, off, "wrong wire type "+strconv.Itoa(int(typ)))
}

func (st *decodeState) tooLong(field string, m, off, n, max int) error {
	return st.fail(ErrTooLarge, field, m, off, strconv.Itoa(n)+" bytes, over the limit of "+strconv.Itoa(max))
}
