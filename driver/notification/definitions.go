package notification

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/theory/jsonpath"
	"go.yaml.in/yaml/v3"

	"github.com/meterkit/meter"
)

//go:embed meters.yaml
var defaultDefinitions []byte

// DefaultDefinitions returns the meter definitions the driver uses when its
// Config names no file: instance, memory, vcpus, disk.root.size (Nova),
// volume.size (Cinder) and image.size (Glance), modelled on Ceilometer's
// meters.yaml. A copy makes a good start for a file of one's own.
func DefaultDefinitions() []byte { return slices.Clone(defaultDefinitions) }

// definitionsFile is the YAML document: the key is "metric", as in
// Ceilometer's meters.yaml.
type definitionsFile struct {
	Metric []definitionYAML `yaml:"metric"`
}

type definitionYAML struct {
	Name       string            `yaml:"name"`
	EventType  yaml.Node         `yaml:"event_type"` // a pattern or a list of patterns
	Type       string            `yaml:"type"`
	Unit       string            `yaml:"unit"`
	Volume     yaml.Node         `yaml:"volume"` // a path or a number
	ResourceID string            `yaml:"resource_id"`
	ProjectID  string            `yaml:"project_id"`
	UserID     string            `yaml:"user_id"`
	Host       string            `yaml:"host"`
	Timestamp  string            `yaml:"timestamp"`
	Labels     map[string]string `yaml:"labels"`
	// ConstantLabels are labels whose values are the strings given, the
	// same for every measurement of the definition.
	ConstantLabels map[string]string `yaml:"constant_labels"`
}

// definition is one parsed meter definition.
type definition struct {
	name       string
	kind       meter.Kind
	unit       string
	include    []string // glob patterns of event types
	exclude    []string
	volume     *jsonpath.Path // nil: the constant
	constant   float64
	resourceID *jsonpath.Path
	projectID  *jsonpath.Path
	userID     *jsonpath.Path
	host       *jsonpath.Path
	timestamp  *jsonpath.Path
	labels     []labelPath // sorted by key
}

// labelPath is a label read from the notification at path, or, when path
// is nil, a constant label of value.
type labelPath struct {
	key   string
	path  *jsonpath.Path
	value string
}

// Definitions is a parsed set of meter definitions.
type Definitions struct{ defs []definition }

// ParseDefinitions parses meter definitions in the YAML format of
// meters.yaml (see DefaultDefinitions): a list under "metric", each with
// name, event_type (glob patterns; '!' excludes), type (gauge, cumulative,
// delta), unit, volume (a JSONPath or a number), resource_id, and
// optionally project_id, user_id, host, timestamp (default $.timestamp, the
// notification's), labels (name: JSONPath) and constant_labels (name:
// value, the same on every measurement of the definition, such as
// gnocchi.resource_type, which tells the Gnocchi sink the type of the
// resource to create). A label key is not empty, not message_id or
// event_type (the driver sets those), not prefixed "meterkit." (meterkit's
// own) and in labels or constant_labels, not both.
func ParseDefinitions(b []byte) (*Definitions, error) {
	var f definitionsFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("notification: meter definitions: %w", err)
	}
	if len(f.Metric) == 0 {
		return nil, errors.New("notification: meter definitions: no definitions under \"metric\"")
	}
	ds := &Definitions{}
	for i, y := range f.Metric {
		d, err := y.parse()
		if err != nil {
			return nil, fmt.Errorf("notification: meter definition %d (%q): %w", i+1, y.Name, err)
		}
		ds.defs = append(ds.defs, d)
	}
	return ds, nil
}

func (y *definitionYAML) parse() (definition, error) {
	d := definition{name: y.Name, unit: y.Unit}
	if y.Name == "" {
		return d, errors.New("no name")
	}
	if y.Type == "" {
		return d, errors.New("no type (gauge, cumulative or delta)")
	}
	var err error
	if d.kind, err = meter.ParseKind(y.Type); err != nil {
		return d, err
	}
	var patterns []string
	switch y.EventType.Kind {
	case yaml.ScalarNode:
		patterns = []string{y.EventType.Value}
	case yaml.SequenceNode:
		if err := y.EventType.Decode(&patterns); err != nil {
			return d, fmt.Errorf("event_type: %w", err)
		}
	default:
		return d, errors.New("event_type: want a pattern or a list of patterns")
	}
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return d, fmt.Errorf("event_type: bad pattern %q", p)
		}
		if neg {
			d.exclude = append(d.exclude, p)
		} else {
			d.include = append(d.include, p)
		}
	}
	if len(d.include) == 0 {
		return d, errors.New("event_type: no pattern to include")
	}
	switch {
	case y.Volume.Kind != yaml.ScalarNode:
		return d, errors.New("volume: want a JSONPath or a number")
	case strings.HasPrefix(y.Volume.Value, "$"):
		if d.volume, err = parsePath("volume", y.Volume.Value); err != nil {
			return d, err
		}
	default:
		if d.constant, err = strconv.ParseFloat(y.Volume.Value, 64); err != nil {
			return d, fmt.Errorf("volume: %q is neither a JSONPath nor a number", y.Volume.Value)
		}
	}
	if y.ResourceID == "" {
		return d, errors.New("no resource_id")
	}
	if y.Timestamp == "" {
		y.Timestamp = "$.timestamp"
	}
	for _, f := range []struct {
		name string
		src  string
		dst  **jsonpath.Path
	}{{"resource_id", y.ResourceID, &d.resourceID}, {"project_id", y.ProjectID, &d.projectID},
		{"user_id", y.UserID, &d.userID}, {"host", y.Host, &d.host}, {"timestamp", y.Timestamp, &d.timestamp}} {
		if f.src == "" {
			continue
		}
		if *f.dst, err = parsePath(f.name, f.src); err != nil {
			return d, err
		}
	}
	for k, v := range y.Labels {
		if err := labelKey("labels", k); err != nil {
			return d, err
		}
		p, err := parsePath("labels."+k, v)
		if err != nil {
			return d, err
		}
		d.labels = append(d.labels, labelPath{key: k, path: p})
	}
	for k, v := range y.ConstantLabels {
		if err := labelKey("constant_labels", k); err != nil {
			return d, err
		}
		if _, ok := y.Labels[k]; ok {
			return d, fmt.Errorf("constant_labels: %q is in labels too", k)
		}
		if len(k) > meter.MaxLabelKeyLen || len(v) > meter.MaxLabelValueLen {
			return d, fmt.Errorf("constant_labels: %q: key over %d or value over %d bytes", k, meter.MaxLabelKeyLen, meter.MaxLabelValueLen)
		}
		d.labels = append(d.labels, labelPath{key: k, value: v})
	}
	slices.SortFunc(d.labels, func(a, b labelPath) int { return strings.Compare(a.key, b.key) })
	return d, nil
}

// labelKey checks a label key of a definition.
func labelKey(field, k string) error {
	switch {
	case k == "" || k == LabelMessageID || k == LabelEventType:
		return fmt.Errorf("%s: key %q is empty or reserved", field, k)
	case strings.HasPrefix(k, meter.ReservedPrefix):
		return fmt.Errorf("%s: key %q: labels prefixed %q are meterkit's own", field, k, meter.ReservedPrefix)
	}
	return nil
}

func parsePath(field, s string) (*jsonpath.Path, error) {
	p, err := jsonpath.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return p, nil
}

// matches reports whether d applies to the event type.
func (d *definition) matches(eventType string) bool {
	in := false
	for _, p := range d.include {
		if ok, _ := path.Match(p, eventType); ok {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, p := range d.exclude {
		if ok, _ := path.Match(p, eventType); ok {
			return false
		}
	}
	return true
}

// Labels every measurement of the driver carries.
const (
	LabelMessageID = "message_id" // the notification's message_id
	LabelEventType = "event_type" // the notification's event_type
)

// Measure turns one notification (the inner message, decoded from JSON into
// maps, slices, strings, float64 and bools) into the measurements of the
// definitions whose event types match. matched counts those definitions;
// a matching definition whose volume or resource id is missing from the
// notification is skipped and its error joined into err.
func (ds *Definitions) Measure(n map[string]any, out []meter.Measurement) (_ []meter.Measurement, matched int, err error) {
	eventType, _ := n["event_type"].(string)
	messageID, _ := n["message_id"].(string)
	var errs []error
	for i := range ds.defs {
		d := &ds.defs[i]
		if !d.matches(eventType) {
			continue
		}
		matched++
		m, err := d.measure(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("meter %s: %w", d.name, err))
			continue
		}
		m.Labels = append(m.Labels, meter.Label{Key: LabelEventType, Value: eventType})
		if messageID != "" {
			m.Labels = append(m.Labels, meter.Label{Key: LabelMessageID, Value: messageID})
		}
		out = append(out, m)
	}
	return out, matched, errors.Join(errs...)
}

func (d *definition) measure(n map[string]any) (meter.Measurement, error) {
	m := meter.Measurement{Name: d.name, Kind: d.kind, Unit: d.unit, Value: d.constant}
	if d.volume != nil {
		v, ok := first(d.volume, n)
		if !ok {
			return m, fmt.Errorf("volume: nothing at %s", d.volume)
		}
		f, err := number(v)
		if err != nil {
			return m, fmt.Errorf("volume at %s: %w", d.volume, err)
		}
		m.Value = f
	}
	var ok bool
	if m.ResourceID, ok = str(d.resourceID, n); !ok || m.ResourceID == "" {
		return m, fmt.Errorf("resource_id: nothing at %s", d.resourceID)
	}
	m.ProjectID, _ = str(d.projectID, n)
	m.UserID, _ = str(d.userID, n)
	m.Host, _ = str(d.host, n)
	if ts, ok := str(d.timestamp, n); ok && ts != "" {
		t, err := ParseTime(ts)
		if err != nil {
			return m, fmt.Errorf("timestamp at %s: %w", d.timestamp, err)
		}
		m.Time = t
	}
	for _, l := range d.labels {
		if l.path == nil {
			m.Labels = append(m.Labels, meter.Label{Key: l.key, Value: l.value})
		} else if v, ok := str(l.path, n); ok {
			m.Labels = append(m.Labels, meter.Label{Key: l.key, Value: v})
		}
	}
	return m, nil
}

// first returns the first node p selects in n.
func first(p *jsonpath.Path, n map[string]any) (any, bool) {
	if p == nil {
		return nil, false
	}
	for v := range p.Select(n).All() {
		return v, true
	}
	return nil, false
}

// str returns what p selects as a string: strings as they are, numbers and
// bools formatted; null, objects and arrays are not strings.
func str(p *jsonpath.Path, n map[string]any) (string, bool) {
	v, ok := first(p, n)
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// number reads a JSON number, or a string holding one (some services send
// sizes as strings).
func number(v any) (float64, error) {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, fmt.Errorf("%q is not a number", v)
		}
	case nil:
		return 0, errors.New("null")
	default:
		return 0, fmt.Errorf("a %T is not a number", v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%v is not a finite number", f)
	}
	return f, nil
}

// ParseTime reads an OpenStack timestamp: oslo's "2026-11-30 10:00:00.123456"
// (no zone: read as UTC, as OpenStack writes UTC), the same with a 'T', or
// RFC 3339 with a zone.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999-0700", "2006-01-02T15:04:05.999999999-0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unknown time format %q", s)
}
