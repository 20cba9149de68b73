package ceilometer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meterkit/meter"
)

// DefaultSource is the sample source when WithSource is not given; it is the
// default of Ceilometer's own sample_source option.
const DefaultSource = "openstack"

// timestampLayout is how sample timestamps are written: ISO 8601 in UTC
// with microseconds and an explicit offset, as Python's isoformat() writes
// an aware UTC datetime.
const timestampLayout = "2006-01-02T15:04:05.000000+00:00"

// osloTimestampLayout is the layout oslo.messaging uses for the timestamp
// of a notification (str() of a naive UTC datetime).
const osloTimestampLayout = "2006-01-02 15:04:05.000000"

// errNoResource is why a measurement without ResourceID and Host is refused.
var errNoResource = errors.New("no ResourceID and no Host: Ceilometer needs a resource_id")

// Sample is one Ceilometer sample as the notification bus carries it: the 11
// keys the notification agent requires, plus message_signature when the
// sink signs. Field order is the order they are written in.
type Sample struct {
	CounterName      string            `json:"counter_name"`
	CounterType      string            `json:"counter_type"`
	CounterUnit      string            `json:"counter_unit"`
	CounterVolume    json.Number       `json:"counter_volume"`
	UserID           *string           `json:"user_id"`
	ProjectID        *string           `json:"project_id"`
	ResourceID       string            `json:"resource_id"`
	Timestamp        string            `json:"timestamp"`
	ResourceMetadata map[string]string `json:"resource_metadata"`
	Source           string            `json:"source"`
	MessageID        string            `json:"message_id"`
	MessageSignature string            `json:"message_signature,omitempty"`
}

// v2Sample is one sample as the legacy v2 REST API takes it: no message_id
// (the API refuses one set by the client), and no project_id or user_id when
// the measurement has none (the API then takes the token's).
type v2Sample struct {
	CounterName      string            `json:"counter_name"`
	CounterType      string            `json:"counter_type"`
	CounterUnit      string            `json:"counter_unit"`
	CounterVolume    json.Number       `json:"counter_volume"`
	ResourceID       string            `json:"resource_id"`
	ProjectID        string            `json:"project_id,omitempty"`
	UserID           string            `json:"user_id,omitempty"`
	Timestamp        string            `json:"timestamp"`
	ResourceMetadata map[string]string `json:"resource_metadata"`
	Source           string            `json:"source"`
}

// mapping holds what the mapping needs besides the measurement.
type mapping struct {
	source string
}

// toSample maps m to a notification sample with the given message_id. It
// fails only when m has neither a ResourceID nor a Host.
func (mp mapping) toSample(m *meter.Measurement, id string) (Sample, error) {
	rid := m.ResourceID
	if rid == "" {
		rid = m.Host
	}
	if rid == "" {
		return Sample{}, errNoResource
	}
	return Sample{
		CounterName:      m.Name,
		CounterType:      m.Kind.String(),
		CounterUnit:      m.Unit,
		CounterVolume:    json.Number(pyFloat(m.Value)),
		UserID:           nullable(m.UserID),
		ProjectID:        nullable(m.ProjectID),
		ResourceID:       rid,
		Timestamp:        m.Time.UTC().Format(timestampLayout),
		ResourceMetadata: metadata(m),
		Source:           mp.source,
		MessageID:        id,
	}, nil
}

// toV2 maps m to a legacy v2 API sample.
func (mp mapping) toV2(m *meter.Measurement) (v2Sample, error) {
	s, err := mp.toSample(m, "")
	if err != nil {
		return v2Sample{}, err
	}
	return v2Sample{
		CounterName:      s.CounterName,
		CounterType:      s.CounterType,
		CounterUnit:      s.CounterUnit,
		CounterVolume:    s.CounterVolume,
		ResourceID:       s.ResourceID,
		ProjectID:        m.ProjectID,
		UserID:           m.UserID,
		Timestamp:        s.Timestamp,
		ResourceMetadata: s.ResourceMetadata,
		Source:           s.Source,
	}, nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// metadata returns the labels as a map, plus "host" from m.Host unless a
// label already has that key. Labels prefixed meter.ReservedPrefix
// ("meterkit.", such as the level meter.StateLabel) are meterkit's own and
// left out. It never returns nil: Ceilometer wants an object, not null.
func metadata(m *meter.Measurement) map[string]string {
	md := make(map[string]string, len(m.Labels)+1)
	for _, l := range m.Labels {
		if strings.HasPrefix(l.Key, meter.ReservedPrefix) {
			continue
		}
		md[l.Key] = l.Value
	}
	if _, ok := md["host"]; !ok && m.Host != "" {
		md["host"] = m.Host
	}
	return md
}

// pyFloat formats v as Python's repr(float) does, so that the number the
// sink writes reads back in Python as a float whose str() is the same text:
// the shortest digits that round-trip, fixed notation with at least one
// digit after the point when the decimal exponent is in [-4, 16), otherwise
// scientific notation with a signed exponent of at least two digits
// ("1e+16", "1.5e-05").
func pyFloat(v float64) string {
	e := strconv.FormatFloat(v, 'e', -1, 64) // "-d.ddde±XX"
	neg := strings.HasPrefix(e, "-")
	e = strings.TrimPrefix(e, "-")
	mant, expText, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	switch {
	case exp < -4 || exp >= 16:
		b.WriteString(mant)
		b.WriteByte('e')
		if exp < 0 {
			b.WriteByte('-')
			exp = -exp
		} else {
			b.WriteByte('+')
		}
		if exp < 10 {
			b.WriteByte('0')
		}
		b.WriteString(strconv.Itoa(exp))
	case exp < 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -exp-1))
		b.WriteString(digits)
	default:
		point := exp + 1
		if len(digits) <= point {
			b.WriteString(digits)
			b.WriteString(strings.Repeat("0", point-len(digits)))
			b.WriteString(".0")
		} else {
			b.WriteString(digits[:point])
			b.WriteByte('.')
			b.WriteString(digits[point:])
		}
	}
	return b.String()
}

// Sign computes the message_signature of s with secret the way Ceilometer's
// telemetry_secret signing does: HMAC-SHA256, hex-encoded, over every
// key/value pair of the sample in sorted key order, with nested objects
// (resource_metadata) flattened into "parent:child" keys at the parent's
// place in the order, each name and each value fed to the HMAC as the UTF-8
// text Python's str() gives it (null is "None"), and message_signature
// itself left out. Sign returns "" when secret is empty.
func Sign(s *Sample, secret []byte) string {
	if len(secret) == 0 {
		return ""
	}
	mac := hmac.New(sha256.New, secret)
	fields := []struct {
		name  string
		value string
		null  bool
		meta  bool
	}{
		{name: "counter_name", value: s.CounterName},
		{name: "counter_type", value: s.CounterType},
		{name: "counter_unit", value: s.CounterUnit},
		{name: "counter_volume", value: string(s.CounterVolume)},
		{name: "message_id", value: s.MessageID},
		{name: "project_id", value: deref(s.ProjectID), null: s.ProjectID == nil},
		{name: "resource_id", value: s.ResourceID},
		{name: "resource_metadata", meta: true},
		{name: "source", value: s.Source},
		{name: "timestamp", value: s.Timestamp},
		{name: "user_id", value: deref(s.UserID), null: s.UserID == nil},
	}
	for _, f := range fields {
		switch {
		case f.meta:
			signMap(mac, "resource_metadata:", s.ResourceMetadata)
		case f.null:
			pair(mac, f.name, "None")
		default:
			pair(mac, f.name, f.value)
		}
	}
	return hex.EncodeToString(mac.Sum(nil))
}

func signMap(mac hash.Hash, prefix string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Go compares strings bytewise, which for UTF-8 is code point order,
	// the order Python's sorted() gives str keys.
	slices.Sort(keys)
	for _, k := range keys {
		pair(mac, prefix+k, m[k])
	}
}

func pair(mac hash.Hash, name, value string) {
	mac.Write([]byte(name))
	mac.Write([]byte(value))
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// newUUID returns a random (version 4) UUID in its 36-character form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(&b)
}

// sampleNamespace is the namespace of sampleID's name-based UUIDs.
var sampleNamespace = [16]byte{0x6d, 0x65, 0x74, 0x65, 0x72, 0x6b, 0x69, 0x74, 0x2e, 0x73, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x73}

// sampleID returns the name-based (version 5, RFC 9562) UUID of the
// measurement at position pos of the batch whose BatchID.String() + "/" is
// prefix.
func sampleID(prefix string, pos int) string {
	h := sha1.New()
	h.Write(sampleNamespace[:])
	h.Write([]byte(prefix))
	h.Write(strconv.AppendInt(nil, int64(pos), 10))
	var sum [sha1.Size]byte
	var b [16]byte
	copy(b[:], h.Sum(sum[:0]))
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(&b)
}

func formatUUID(b *[16]byte) string {
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// Notification is the inner object of an oslo.messaging v2 envelope: one
// telemetry.polling notification carrying samples.
type Notification struct {
	MessageID   string  `json:"message_id"`
	PublisherID string  `json:"publisher_id"`
	EventType   string  `json:"event_type"`
	Priority    string  `json:"priority"`
	Payload     Payload `json:"payload"`
	Timestamp   string  `json:"timestamp"`
}

// Payload is the payload of a telemetry.polling notification.
type Payload struct {
	Samples []Sample `json:"samples"`
}

// Envelope is the oslo.messaging v2 wire format: the notification, encoded
// as a JSON string inside a JSON object.
type Envelope struct {
	Version string `json:"oslo.version"`
	Message string `json:"oslo.message"`
}

// Event type and priority of the notifications the sink publishes: what
// Ceilometer's polling agents send and its notification agent listens for.
const (
	EventType = "telemetry.polling"
	Priority  = "SAMPLE"
)

// encodeNotification returns the AMQP body for samples: the oslo v2
// envelope around a telemetry.polling notification.
func encodeNotification(id, publisher string, now time.Time, samples []Sample) ([]byte, error) {
	inner, err := json.Marshal(Notification{
		MessageID:   id,
		PublisherID: publisher,
		EventType:   EventType,
		Priority:    Priority,
		Payload:     Payload{Samples: samples},
		Timestamp:   now.UTC().Format(osloTimestampLayout),
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(Envelope{Version: "2.0", Message: string(inner)})
}

// DecodeEnvelope is the inverse of what the notification sink publishes: it
// unwraps an oslo v2 envelope and decodes the notification inside. Tests and
// tools use it to read what reached the bus.
func DecodeEnvelope(body []byte) (*Notification, error) {
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, errors.New("ceilometer: not an oslo envelope: " + err.Error())
	}
	if env.Version != "2.0" {
		return nil, errors.New("ceilometer: oslo.version " + strconv.Quote(env.Version) + ", want \"2.0\"")
	}
	var n Notification
	if err := json.Unmarshal([]byte(env.Message), &n); err != nil {
		return nil, errors.New("ceilometer: oslo.message: " + err.Error())
	}
	return &n, nil
}
