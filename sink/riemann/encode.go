package riemann

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// Labels that control the event instead of becoming attributes. Every label
// whose key starts with ControlPrefix is kept out of the attributes, including
// ones this package does not know. So is every label whose key starts with
// meter.ReservedPrefix ("meterkit."): meter.StateLabel, which the levels stage
// writes, is the event's state unless LabelState is also there; the others are
// meterkit's own bookkeeping.
const (
	ControlPrefix    = "riemann."
	LabelTTL         = "riemann.ttl"         // float seconds ("90", "2.5") or a Go duration ("1m30s")
	LabelState       = "riemann.state"       // "ok", "warning", "critical", ...
	LabelDescription = "riemann.description" // free text
)

// Field numbers of riemann-go-client's proto/proto.proto (Msg, Event,
// Attribute). The encoder writes them in increasing order, as protobuf
// marshalers do, so its output is byte-for-byte what proto.Marshal makes of
// the same proto.Msg (encode_test.go checks this).
const (
	msgOK     protowire.Number = 2
	msgError  protowire.Number = 3
	msgQuery  protowire.Number = 5
	msgEvents protowire.Number = 6

	evTime        protowire.Number = 1
	evState       protowire.Number = 2
	evService     protowire.Number = 3
	evHost        protowire.Number = 4
	evDescription protowire.Number = 5
	evTags        protowire.Number = 7
	evTTL         protowire.Number = 8
	evAttributes  protowire.Number = 9
	evTimeMicros  protowire.Number = 10
	evMetricD     protowire.Number = 14

	attrKey   protowire.Number = 1
	attrValue protowire.Number = 2
)

// Attribute keys for the measurement fields that have no Riemann field of
// their own. An empty field is left out.
const (
	AttrUnit       = "unit"
	AttrResourceID = "resource_id"
	AttrProjectID  = "project_id"
	AttrUserID     = "user_id"
	AttrKind       = "kind"
)

// encoder turns measurements into protobuf-encoded Riemann Events. It keeps
// a scratch buffer, so it encodes without allocating once warmed up.
type encoder struct {
	host  string  // for measurements without one
	state string  // unless LabelState says otherwise
	ttl   float32 // seconds; unless LabelTTL says otherwise
	noTTL bool    // leave ttl out unless LabelTTL sets it
	tags  []string

	ev []byte // one event, before it is framed into the Msg
}

// appendEvent appends m to msg as one Msg.events entry (tag, length, Event).
func (e *encoder) appendEvent(msg []byte, m *meter.Measurement) ([]byte, error) {
	ev, err := e.event(e.ev[:0], m)
	e.ev = ev[:0]
	if err != nil {
		return msg, err
	}
	msg = protowire.AppendTag(msg, msgEvents, protowire.BytesType)
	return protowire.AppendBytes(msg, ev), nil
}

// event appends the fields of m's Event (without a length prefix) to b.
func (e *encoder) event(b []byte, m *meter.Measurement) ([]byte, error) {
	state, description := e.state, ""
	ttl, hasTTL := e.ttl, !e.noTTL
	explicit := false // LabelState seen: it wins over meter.StateLabel
	for i := range m.Labels {
		l := &m.Labels[i]
		if !steers(l.Key) {
			continue
		}
		switch l.Key {
		case LabelState:
			state, explicit = l.Value, true
		case meter.StateLabel:
			if !explicit {
				state = l.Value
			}
		case LabelDescription:
			description = l.Value
		case LabelTTL:
			v, err := parseTTL(l.Value)
			if err != nil {
				return b, fmt.Errorf("label %s: %w", LabelTTL, err)
			}
			ttl, hasTTL = v, true
		}
	}
	host := m.Host
	if host == "" {
		host = e.host
	}

	b = protowire.AppendTag(b, evTime, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.Time.Unix()))
	if state != "" {
		b = appendString(b, evState, state)
	}
	b = appendString(b, evService, m.Name)
	if host != "" {
		b = appendString(b, evHost, host)
	}
	if description != "" {
		b = appendString(b, evDescription, description)
	}
	for _, t := range e.tags {
		b = appendString(b, evTags, t)
	}
	if hasTTL {
		b = protowire.AppendTag(b, evTTL, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(ttl))
	}
	for i := range m.Labels {
		l := &m.Labels[i]
		if steers(l.Key) || shadowed(m, l.Key) {
			continue
		}
		b = appendAttribute(b, l.Key, l.Value)
	}
	if m.Unit != "" {
		b = appendAttribute(b, AttrUnit, m.Unit)
	}
	if m.ResourceID != "" {
		b = appendAttribute(b, AttrResourceID, m.ResourceID)
	}
	if m.ProjectID != "" {
		b = appendAttribute(b, AttrProjectID, m.ProjectID)
	}
	if m.UserID != "" {
		b = appendAttribute(b, AttrUserID, m.UserID)
	}
	if m.Kind != meter.KindUnspecified {
		b = appendAttribute(b, AttrKind, m.Kind.String())
	}
	b = protowire.AppendTag(b, evTimeMicros, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.Time.UnixMicro()))
	b = protowire.AppendTag(b, evMetricD, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(m.Value))
	return b, nil
}

// steers reports whether a label key is kept out of the attributes: a
// control label (ControlPrefix) or one of meterkit's own (meter.ReservedPrefix).
func steers(key string) bool {
	return strings.HasPrefix(key, ControlPrefix) || strings.HasPrefix(key, meter.ReservedPrefix)
}

// shadowed reports whether a label key names an attribute that a non-empty
// measurement field sets: the field wins, so that no event carries two
// attributes with the same key.
func shadowed(m *meter.Measurement, key string) bool {
	switch key {
	case AttrUnit:
		return m.Unit != ""
	case AttrResourceID:
		return m.ResourceID != ""
	case AttrProjectID:
		return m.ProjectID != ""
	case AttrUserID:
		return m.UserID != ""
	case AttrKind:
		return m.Kind != meter.KindUnspecified
	}
	return false
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendAttribute(b []byte, key, value string) []byte {
	n := protowire.SizeTag(attrKey) + protowire.SizeBytes(len(key)) +
		protowire.SizeTag(attrValue) + protowire.SizeBytes(len(value))
	b = protowire.AppendTag(b, evAttributes, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b = appendString(b, attrKey, key)
	return appendString(b, attrValue, value)
}

// parseTTL reads a TTL as float seconds ("60", "2.5") or as a Go duration
// ("1m30s"). It must be finite, not negative, and fit a float32.
func parseTTL(s string) (float32, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		d, derr := time.ParseDuration(s)
		if derr != nil {
			return 0, fmt.Errorf("bad TTL %q: want seconds (60, 2.5) or a duration (1m30s)", s)
		}
		v = d.Seconds()
	}
	if math.IsNaN(v) || v < 0 || v > math.MaxFloat32 {
		return 0, fmt.Errorf("bad TTL %q: want a finite number of seconds >= 0", s)
	}
	return float32(v), nil
}

// Receipt events (WithReceipts). The service names the batch, so the index
// keeps one receipt per batch and per publisher host; the tag lets a
// server's streams tell receipts from measurements.
const (
	ReceiptService = "meterkit.receipt/" // followed by sink.BatchID.String()
	ReceiptTag     = "meterkit.receipt"
)

// appendReceipt appends to msg a receipt event saying that the server holds
// batch id up to position pos, kept by the server's index for ttl.
func (e *encoder) appendReceipt(msg []byte, id *sink.BatchID, pos int, ttl time.Duration) []byte {
	now := time.Now()
	b := e.ev[:0]
	b = protowire.AppendTag(b, evTime, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(now.Unix()))
	b = protowire.AppendTag(b, evService, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(ReceiptService)+idLen(id)))
	b = append(b, ReceiptService...)
	b = appendID(b, id)
	if e.host != "" {
		b = appendString(b, evHost, e.host)
	}
	b = appendString(b, evTags, ReceiptTag)
	b = protowire.AppendTag(b, evTTL, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, math.Float32bits(float32(ttl.Seconds())))
	b = protowire.AppendTag(b, evTimeMicros, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(now.UnixMicro()))
	b = protowire.AppendTag(b, evMetricD, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(float64(pos)))
	e.ev = b[:0]
	msg = protowire.AppendTag(msg, msgEvents, protowire.BytesType)
	return protowire.AppendBytes(msg, b)
}

// appendID appends id.String() to b without allocating in the common case
// (tenant and agent that need no escaping).
func appendID(b []byte, id *sink.BatchID) []byte {
	b = appendEscaped(b, id.Tenant)
	b = append(b, '/')
	b = appendEscaped(b, id.Agent)
	b = append(b, '/')
	return strconv.AppendUint(b, id.Seq, 10)
}

func appendEscaped(b []byte, s string) []byte {
	if url.PathEscape(s) == s { // no allocation: PathEscape returns s when nothing needs escaping
		return append(b, s...)
	}
	return append(b, url.PathEscape(s)...)
}

func idLen(id *sink.BatchID) int {
	var buf [64]byte
	return len(appendID(buf[:0], id))
}

// appendReceiptQuery appends a Msg asking for the receipts of batch id.
// The service is path-escaped, so it holds no character a query string
// would need to escape.
func appendReceiptQuery(msg []byte, id *sink.BatchID) []byte {
	q := `service = "` + ReceiptService + id.String() + `"`
	msg = protowire.AppendTag(msg, msgQuery, protowire.BytesType)
	msg = protowire.AppendVarint(msg, uint64(protowire.SizeTag(1)+protowire.SizeBytes(len(q))))
	return appendString(msg, 1, q)
}
