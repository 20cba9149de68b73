package exec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/meterkit/meter"
)

// maxLineErrors bounds how many malformed lines one error lists.
const maxLineErrors = 10

// jsonLine is one line of output in the "json" format.
type jsonLine struct {
	Name       string            `json:"name"`
	Kind       string            `json:"kind"`
	Unit       string            `json:"unit"`
	Value      *float64          `json:"value"`
	Time       string            `json:"time"`
	ResourceID string            `json:"resource_id"`
	ProjectID  string            `json:"project_id"`
	UserID     string            `json:"user_id"`
	Host       string            `json:"host"`
	Labels     map[string]string `json:"labels"`
}

// lineErrors collects the errors of malformed lines, at most maxLineErrors
// of them, and counts the rest.
type lineErrors struct {
	prog    string
	errs    []error
	dropped int
}

func (e *lineErrors) add(line int, format string, args ...any) {
	if len(e.errs) == maxLineErrors {
		e.dropped++
		return
	}
	e.errs = append(e.errs, fmt.Errorf("exec: %s: output line %d: %s", e.prog, line, fmt.Sprintf(format, args...)))
}

func (e *lineErrors) err() error {
	if e.dropped > 0 {
		e.errs = append(e.errs, fmt.Errorf("exec: %s: %d more malformed output lines", e.prog, e.dropped))
	}
	return errors.Join(e.errs...)
}

// parseJSON reads one measurement per non-blank line. now is the time of
// measurements whose line has none.
func (d *Driver) parseJSON(out []byte, now time.Time) ([]meter.Measurement, error) {
	errs := lineErrors{prog: d.name}
	var ms []meter.Measurement
	for i, line := range bytes.Split(out, []byte("\n")) {
		n := i + 1
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		m, err := d.jsonMeasurement(line, now)
		if err != nil {
			errs.add(n, "%v", err)
			continue
		}
		ms = append(ms, m)
	}
	return ms, errs.err()
}

func (d *Driver) jsonMeasurement(line []byte, now time.Time) (meter.Measurement, error) {
	var l jsonLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return meter.Measurement{}, fmt.Errorf("not a JSON measurement: %v", err)
	}
	if dec.More() {
		return meter.Measurement{}, errors.New("not a JSON measurement: more than one value on the line")
	}
	if l.Name == "" {
		return meter.Measurement{}, errors.New(`"name" is missing`)
	}
	if l.Value == nil {
		return meter.Measurement{}, errors.New(`"value" is missing`)
	}
	m := meter.Measurement{
		Name:       d.fullName(l.Name),
		Kind:       meter.Gauge,
		Unit:       l.Unit,
		Value:      *l.Value,
		Time:       now,
		Host:       l.Host,
		ResourceID: l.ResourceID,
		ProjectID:  l.ProjectID,
		UserID:     l.UserID,
	}
	if m.ResourceID == "" {
		m.ResourceID = d.cfg.ResourceID
	}
	if l.Kind != "" {
		k, err := meter.ParseKind(l.Kind)
		if err != nil {
			return meter.Measurement{}, fmt.Errorf(`"kind" %q: want gauge, cumulative or delta`, l.Kind)
		}
		m.Kind = k
	}
	if l.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, l.Time)
		if err != nil {
			return meter.Measurement{}, fmt.Errorf(`"time" %q is not RFC 3339 (like 2006-01-02T15:04:05Z)`, l.Time)
		}
		m.Time = t
	}
	if len(l.Labels) > 0 {
		m.Labels = make([]meter.Label, 0, len(l.Labels))
		for k, v := range l.Labels {
			m.Labels = append(m.Labels, meter.Label{Key: k, Value: v})
		}
		sort.Slice(m.Labels, func(i, j int) bool { return m.Labels[i].Key < m.Labels[j].Key })
	}
	if err := m.Validate(); err != nil {
		return meter.Measurement{}, err
	}
	return m, nil
}
