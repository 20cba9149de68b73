package meter

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Kind says how a measurement's value behaves over time.
type Kind uint8

const (
	// KindUnspecified is the zero Kind; Validate rejects it.
	KindUnspecified Kind = iota
	// Gauge is a value sampled at a moment: a temperature, a percentage, bytes in use.
	Gauge
	// Cumulative is a counter that only grows from some start (it may reset to
	// zero when its source restarts): bytes sent since boot, CPU seconds.
	Cumulative
	// Delta is the change of a quantity since the previous measurement of the same series.
	Delta
)

var kindNames = [...]string{"unspecified", "gauge", "cumulative", "delta"}

// String returns the lower-case name of k ("gauge", "cumulative", "delta"),
// the same word Ceilometer uses for a sample's counter_type.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames[1:] {
		if s == n {
			return Kind(i + 1), nil
		}
	}
	return KindUnspecified, fmt.Errorf("meter: unknown kind %q (want gauge, cumulative or delta)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.valid() {
		return nil, fmt.Errorf("meter: unknown kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

func (k Kind) valid() bool { return k >= Gauge && k <= Delta }

// Label is one key/value pair describing a measurement. Labels become
// Ceilometer resource_metadata and Riemann attributes.
type Label struct {
	Key   string
	Value string
}

// Limits that Validate enforces. They bound what one measurement can cost a
// publisher, whatever an agent sends.
const (
	MaxNameLen       = 255  // bytes in Name
	MaxUnitLen       = 63   // bytes in Unit
	MaxIDLen         = 255  // bytes in Host, ResourceID, ProjectID, UserID
	MaxLabels        = 64   // labels per measurement
	MaxLabelKeyLen   = 128  // bytes in a label key
	MaxLabelValueLen = 1024 // bytes in a label value
)

// Measurement is one value of one series at one time: the unit every part of
// meterkit speaks. It is the superset of a Ceilometer sample and a Riemann
// event; the fields a store does not know are mapped by its sink.
//
// A Measurement is a plain value. Code that receives a slice of them (a sink,
// a stage) must not keep a reference to the slice, or to the Labels inside it,
// after it returns: the caller reuses the memory.
type Measurement struct {
	// Name of the series, such as "cpu.util" or "disk.read.bytes". Required.
	Name string
	// Kind of value. Required.
	Kind Kind
	// Unit of Value, such as "%", "B", "s", "B/s". Empty means dimensionless.
	Unit string
	// Value is finite: NaN and ±Inf are rejected.
	Value float64
	// Time the value was observed. Required, in the years 1970-2261 (UTC).
	Time time.Time
	// Host that produced the measurement; the agent fills it when empty.
	Host string
	// ResourceID names what was measured (a disk, an instance, a PDU outlet).
	ResourceID string
	// ProjectID and UserID own the resource (Ceilometer needs them).
	ProjectID string
	UserID    string
	// Labels describe the series further. Keys are unique.
	Labels []Label
}

// Label returns the value of the label with the given key.
func (m *Measurement) Label(key string) (string, bool) {
	for _, l := range m.Labels {
		if l.Key == key {
			return l.Value, true
		}
	}
	return "", false
}

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("invalid measurement")

// FieldError says which field of a measurement is wrong and why.
type FieldError struct {
	Field  string // "Name", "Value", "Labels[3].Key", ...
	Reason string
}

func (e *FieldError) Error() string {
	return "meter: invalid measurement: " + e.Field + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// endOf2261 is the Unix time of 2262-01-01T00:00:00Z: a valid Time is
// before it (and the codec's nanoseconds reach into 2262).
const endOf2261 = 9214646400

// Validate reports the first thing wrong with m, as a *FieldError naming the
// field, or nil. It does not allocate when m is valid.
func (m *Measurement) Validate() error {
	switch {
	case m.Name == "":
		return fieldErr("Name", "empty")
	case len(m.Name) > MaxNameLen:
		return fieldErr("Name", "%d bytes, over the limit of %d", len(m.Name), MaxNameLen)
	case !utf8.ValidString(m.Name):
		return fieldErr("Name", "not valid UTF-8")
	}
	if !m.Kind.valid() {
		return fieldErr("Kind", "unknown kind %d (want Gauge, Cumulative or Delta)", uint8(m.Kind))
	}
	if len(m.Unit) > MaxUnitLen {
		return fieldErr("Unit", "%d bytes, over the limit of %d", len(m.Unit), MaxUnitLen)
	}
	if math.IsNaN(m.Value) {
		return fieldErr("Value", "NaN")
	}
	if math.IsInf(m.Value, 0) {
		return fieldErr("Value", "%v", m.Value)
	}
	if m.Time.IsZero() {
		return fieldErr("Time", "zero")
	}
	// The years 1970-2261 in UTC, checked on the Unix time: the year of
	// a time takes a calendar computation, and this runs for every
	// measurement on both sides.
	if s := m.Time.Unix(); s < 0 || s >= endOf2261 {
		return fieldErr("Time", "year %d out of range 1970-2261 (UTC)", m.Time.UTC().Year())
	}
	for _, f := range [...]struct {
		name, v string
	}{{"Host", m.Host}, {"ResourceID", m.ResourceID}, {"ProjectID", m.ProjectID}, {"UserID", m.UserID}} {
		if len(f.v) > MaxIDLen {
			return fieldErr(f.name, "%d bytes, over the limit of %d", len(f.v), MaxIDLen)
		}
	}
	if len(m.Labels) > MaxLabels {
		return fieldErr("Labels", "%d labels, over the limit of %d", len(m.Labels), MaxLabels)
	}
	for i, l := range m.Labels {
		switch {
		case l.Key == "":
			return fieldErr("Labels["+strconv.Itoa(i)+"].Key", "empty")
		case len(l.Key) > MaxLabelKeyLen:
			return fieldErr("Labels["+strconv.Itoa(i)+"].Key", "%d bytes, over the limit of %d", len(l.Key), MaxLabelKeyLen)
		case len(l.Value) > MaxLabelValueLen:
			return fieldErr("Labels["+strconv.Itoa(i)+"].Value", "%d bytes, over the limit of %d", len(l.Value), MaxLabelValueLen)
		}
		for _, p := range m.Labels[:i] {
			if p.Key == l.Key {
				return fieldErr("Labels["+strconv.Itoa(i)+"].Key", "duplicate key %q", l.Key)
			}
		}
	}
	return nil
}
