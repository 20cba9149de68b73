package exec

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/meterkit/meter"
)

// Nagios plugin states, by exit code.
var nagiosStates = [...]string{"ok", "warning", "critical", "unknown"}

// nagiosUnknown is the exit code of the unknown state.
const nagiosUnknown = 3

// uom says how a Nagios unit of measurement maps to a meter unit.
type uom struct {
	unit   string
	factor float64
	kind   meter.Kind
}

// uoms are the units of measurement of the Nagios plugin guidelines, plus
// GB and the binary spellings. KB, MB, GB and TB are multiples of 1024, as
// the standard plugins (check_disk, check_swap) compute them. Any other
// unit is kept as it is, on a gauge.
var uoms = map[string]uom{
	"":    {"", 1, meter.Gauge},
	"s":   {"s", 1, meter.Gauge},
	"ms":  {"s", 1e-3, meter.Gauge},
	"us":  {"s", 1e-6, meter.Gauge},
	"%":   {"%", 1, meter.Gauge},
	"B":   {"B", 1, meter.Gauge},
	"KB":  {"B", 1 << 10, meter.Gauge},
	"MB":  {"B", 1 << 20, meter.Gauge},
	"GB":  {"B", 1 << 30, meter.Gauge},
	"TB":  {"B", 1 << 40, meter.Gauge},
	"KiB": {"B", 1 << 10, meter.Gauge},
	"MiB": {"B", 1 << 20, meter.Gauge},
	"GiB": {"B", 1 << 30, meter.Gauge},
	"TiB": {"B", 1 << 40, meter.Gauge},
	"c":   {"", 1, meter.Cumulative},
}

// parseNagios turns a plugin's exit code and output into a state
// measurement and one measurement per performance datum.
func (d *Driver) parseNagios(r run) ([]meter.Measurement, error) {
	errs := lineErrors{prog: d.name}
	text, perf := splitNagios(r.stdout)
	var ms []meter.Measurement
	if r.exited {
		code := r.exitCode
		if code < 0 || code >= len(nagiosStates) {
			errs.errs = append(errs.errs, fmt.Errorf("exec: %s exited with status %d, outside the Nagios range 0-3: counted as unknown%s",
				d.name, code, stderrNote(r.stderr)))
			code = nagiosUnknown
		}
		state := meter.Measurement{
			Name:       d.fullName("state"),
			Kind:       meter.Gauge,
			Value:      float64(code),
			Time:       r.done,
			ResourceID: d.cfg.ResourceID,
			Labels:     []meter.Label{{Key: "state", Value: nagiosStates[code]}},
		}
		if text != "" {
			state.Labels = append(state.Labels, meter.Label{Key: "output", Value: truncateUTF8(text, meter.MaxLabelValueLen)})
		}
		ms = append(ms, state)
	}
	seen := map[string]int{}
	for _, p := range perf {
		for _, tok := range splitPerf(p.text) {
			m, err := d.perfMeasurement(tok, r)
			if err != nil {
				errs.add(p.line, "perfdata %q: %v", tok, err)
				continue
			}
			if m.Name == "" { // value "U": undetermined
				continue
			}
			if prev, dup := seen[m.Name]; dup {
				errs.add(p.line, "perfdata %q: label repeats the one on line %d", tok, prev)
				continue
			}
			seen[m.Name] = p.line
			ms = append(ms, m)
		}
	}
	return ms, errs.err()
}

// perfText is the performance data part of one output line.
type perfText struct {
	line int
	text string
}

// splitNagios splits a plugin's output into the first line's text and the
// performance data. The plugin guidelines put perfdata after a '|' on the
// first line, and after the first '|' of the long output, which runs on to
// the end of the output.
func splitNagios(out []byte) (text string, perf []perfText) {
	lines := strings.Split(string(bytes.ToValidUTF8(out, []byte("\uFFFD"))), "\n")
	first, p, ok := strings.Cut(lines[0], "|")
	text = strings.TrimSpace(first)
	if ok {
		perf = append(perf, perfText{1, p})
	}
	inPerf := false
	for i, l := range lines[1:] {
		n := i + 2
		if inPerf {
			perf = append(perf, perfText{n, l})
			continue
		}
		if _, p, ok := strings.Cut(l, "|"); ok {
			inPerf = true
			perf = append(perf, perfText{n, p})
		}
	}
	return text, perf
}

// splitPerf splits performance data at spaces outside single quotes.
func splitPerf(s string) []string {
	var (
		toks   []string
		start  = -1
		quoted bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			if start < 0 {
				start = i
			}
			quoted = !quoted
		case (c == ' ' || c == '\t' || c == '\r') && !quoted:
			if start >= 0 {
				toks = append(toks, s[start:i])
				start = -1
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		toks = append(toks, s[start:])
	}
	return toks
}

// perfMeasurement parses one `'label'=value[UOM];[warn];[crit];[min];[max]`.
// A value of "U" gives a measurement with an empty name and no error.
func (d *Driver) perfMeasurement(tok string, r run) (meter.Measurement, error) {
	label, rest, err := perfLabel(tok)
	if err != nil {
		return meter.Measurement{}, err
	}
	fields := strings.Split(rest, ";")
	if len(fields) > 5 {
		return meter.Measurement{}, fmt.Errorf("%d ';'-separated fields after '=', want at most 5 (value;warn;crit;min;max)", len(fields))
	}
	vs := fields[0]
	if vs == "U" {
		return meter.Measurement{}, nil
	}
	end := 0
	for end < len(vs) && strings.IndexByte("+-.0123456789eE", vs[end]) >= 0 {
		end++
	}
	// An 'e' or 'E' is part of the number only if digits follow it.
	for end > 0 && (vs[end-1] == 'e' || vs[end-1] == 'E') {
		end--
	}
	num, unit := vs[:end], vs[end:]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return meter.Measurement{}, fmt.Errorf("value %q is not a number", vs)
	}
	u, known := uoms[unit]
	if !known {
		u = uom{unit: unit, factor: 1, kind: meter.Gauge}
	}
	m := meter.Measurement{
		Name:       d.fullName(label),
		Kind:       u.kind,
		Unit:       u.unit,
		Value:      v * u.factor,
		Time:       r.done,
		ResourceID: d.cfg.ResourceID,
	}
	for i, key := range [...]string{"", "warn", "crit", "min", "max"} {
		if i == 0 || i >= len(fields) || fields[i] == "" {
			continue
		}
		val, err := scaleRange(fields[i], u.factor, i >= 3)
		if err != nil {
			return meter.Measurement{}, fmt.Errorf("%s %q: %v", key, fields[i], err)
		}
		m.Labels = append(m.Labels, meter.Label{Key: key, Value: val})
	}
	if err := m.Validate(); err != nil {
		return meter.Measurement{}, err
	}
	return m, nil
}

// perfLabel splits `'label'=rest` or `label=rest`. In a quoted label, two
// single quotes stand for one.
func perfLabel(tok string) (label, rest string, err error) {
	if strings.HasPrefix(tok, "'") {
		var b strings.Builder
		i := 1
		for {
			j := strings.IndexByte(tok[i:], '\'')
			if j < 0 {
				return "", "", fmt.Errorf("unterminated quoted label")
			}
			b.WriteString(tok[i : i+j])
			i += j + 1
			if i < len(tok) && tok[i] == '\'' {
				b.WriteByte('\'')
				i++
				continue
			}
			break
		}
		label, rest = b.String(), tok[i:]
		if !strings.HasPrefix(rest, "=") {
			return "", "", fmt.Errorf("no '=' after the quoted label")
		}
		rest = rest[1:]
	} else {
		var ok bool
		label, rest, ok = strings.Cut(tok, "=")
		if !ok {
			return "", "", fmt.Errorf("no '=' (want 'label'=value[UOM];warn;crit;min;max)")
		}
	}
	if label == "" {
		return "", "", fmt.Errorf("empty label")
	}
	return label, rest, nil
}

// scaleRange multiplies the numbers of a threshold range ([@][start:][end],
// start may be ~) or, when plain, of a min or max by factor, and returns it
// in the same notation.
func scaleRange(s string, factor float64, plain bool) (string, error) {
	scale := func(n string) (string, error) {
		if n == "" || n == "~" {
			return n, nil
		}
		v, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not a number", n)
		}
		return strconv.FormatFloat(v*factor, 'f', -1, 64), nil
	}
	if plain {
		return scale(s)
	}
	at := ""
	if strings.HasPrefix(s, "@") {
		at, s = "@", s[1:]
	}
	start, end, isRange := strings.Cut(s, ":")
	if !isRange {
		e, err := scale(start)
		return at + e, err
	}
	st, err := scale(start)
	if err != nil {
		return "", err
	}
	e, err := scale(end)
	if err != nil {
		return "", err
	}
	return at + st + ":" + e, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
