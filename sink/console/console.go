package console

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// Format selects how a measurement is written.
type Format uint8

const (
	// Text writes one aligned, human-readable line per measurement.
	Text Format = iota
	// JSON writes one JSON object per line (JSON Lines).
	JSON
)

// ParseFormat accepts "text" and "json".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "text":
		return Text, nil
	case "json", "jsonl":
		return JSON, nil
	}
	return Text, fmt.Errorf("console: unknown format %q (want text or json)", s)
}

// DefaultTimeFormat is the layout of times in Text output without
// WithTimeFormat.
const DefaultTimeFormat = time.RFC3339Nano

type config struct {
	format     Format
	timeLayout string
}

// Option configures a Sink made by New or Create.
type Option func(*config) error

// WithFormat sets the output format: Text (the default, and the zero
// Format) or JSON. Any other value makes New fail.
func WithFormat(f Format) Option {
	return func(c *config) error {
		if f != Text && f != JSON {
			return fmt.Errorf("WithFormat: unknown format %d (want Text or JSON)", f)
		}
		c.format = f
		return nil
	}
}

// WithTimeFormat sets the layout of times in Text output; empty means
// DefaultTimeFormat (time.RFC3339Nano). JSON output always uses RFC 3339
// with nanoseconds in UTC.
func WithTimeFormat(layout string) Option {
	return func(c *config) error { c.timeLayout = cmp.Or(layout, DefaultTimeFormat); return nil }
}

func newConfig(opts []Option) (config, error) {
	c := config{format: Text, timeLayout: DefaultTimeFormat}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return c, fmt.Errorf("console: %w", err)
		}
	}
	return c, nil
}

// Sink writes measurements to an io.Writer, one line each.
type Sink struct {
	w          *bufio.Writer // nil until the first Write of a Create sink
	path       string        // the file of a Create sink, opened on first Write
	closer     io.Closer     // the file it opened, if any
	format     Format
	timeLayout string
	buf        []byte
	closed     bool
}

// New returns a Sink writing to w, or an error naming an invalid option.
// The caller keeps ownership of w: Close flushes but does not close it.
func New(w io.Writer, opts ...Option) (*Sink, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newSink(w, c), nil
}

func newSink(w io.Writer, c config) *Sink {
	return &Sink{w: bufio.NewWriterSize(w, 64<<10), format: c.format, timeLayout: c.timeLayout}
}

// Create returns a Sink appending to the named file. The file is opened,
// and created (mode 0640) if needed, by the first Write, not by Create: a
// sink made only to check a configuration leaves no file behind. An error
// opening it is that Write's error (and the next Write tries again). Close
// closes the file.
func Create(path string, opts ...Option) (*Sink, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("console: Create: empty path")
	}
	return &Sink{path: path, format: c.format, timeLayout: c.timeLayout}, nil
}

// open opens the file of a Create sink on first use.
func (s *Sink) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	s.w, s.closer = bufio.NewWriterSize(f, 64<<10), f
	return nil
}

func init() {
	sink.RegisterScheme("console", openURL)
}

// openURL understands console:// (stdout), console://stderr, and
// console:///path/to/file, each with ?format=text|json.
func openURL(_ context.Context, u *url.URL) (sink.Sink, error) {
	f, err := ParseFormat(u.Query().Get("format"))
	if err != nil {
		return nil, err
	}
	for k := range u.Query() {
		if k != "format" {
			return nil, fmt.Errorf("console: unknown parameter %q (known: format)", k)
		}
	}
	switch {
	case u.Path != "" && u.Host == "":
		return Create(u.Path, WithFormat(f))
	case u.Host == "" || u.Host == "stdout":
		return New(os.Stdout, WithFormat(f))
	case u.Host == "stderr":
		return New(os.Stderr, WithFormat(f))
	}
	return nil, fmt.Errorf("console: want console://, console://stderr or console:///path, got host %q", u.Host)
}

// Write writes one line per measurement and flushes.
func (s *Sink) Write(_ context.Context, batch []meter.Measurement) error {
	if s.closed {
		return fmt.Errorf("console: write after Close: %w", sink.ErrClosed)
	}
	if s.w == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	for i := range batch {
		s.buf = s.buf[:0]
		if s.format == JSON {
			s.buf = AppendJSON(s.buf, &batch[i])
		} else {
			s.buf = AppendText(s.buf, &batch[i], s.timeLayout)
		}
		s.buf = append(s.buf, '\n')
		if _, err := s.w.Write(s.buf); err != nil {
			return fmt.Errorf("console: write: %w", err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("console: write: %w", err)
	}
	return nil
}

// Close flushes, and closes the file if Create opened it. It is safe to call twice.
func (s *Sink) Close(context.Context) error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.w == nil {
		return nil // a Create sink never written to: no file was opened
	}
	err := s.w.Flush()
	if s.closer != nil {
		err = errors.Join(err, s.closer.Close())
	}
	if err != nil {
		return fmt.Errorf("console: close: %w", err)
	}
	return nil
}

// AppendText appends the text form of m, without a newline:
//
//	2026-11-21T10:00:00Z web1 cpu.util[total] 12.5 % gauge mode=user
func AppendText(b []byte, m *meter.Measurement, timeLayout string) []byte {
	b = m.Time.AppendFormat(b, timeLayout)
	b = append(b, ' ')
	if m.Host != "" {
		b = append(b, m.Host...)
	} else {
		b = append(b, '-')
	}
	b = append(b, ' ')
	b = append(b, m.Name...)
	if m.ResourceID != "" {
		b = append(b, '[')
		b = append(b, m.ResourceID...)
		b = append(b, ']')
	}
	b = append(b, ' ')
	b = appendHumanFloat(b, m.Value)
	if m.Unit != "" {
		b = append(b, ' ')
		b = append(b, m.Unit...)
	}
	b = append(b, ' ')
	b = append(b, m.Kind.String()...)
	if m.ProjectID != "" {
		b = append(b, " project="...)
		b = append(b, m.ProjectID...)
	}
	if m.UserID != "" {
		b = append(b, " user="...)
		b = append(b, m.UserID...)
	}
	for _, l := range m.Labels {
		b = append(b, ' ')
		b = append(b, l.Key...)
		b = append(b, '=')
		b = append(b, l.Value...)
	}
	return b
}

// appendHumanFloat writes whole numbers below 10^15 in full (bytes,
// counters: "25323552768", not "2.5323552768e+10") and anything else in
// the shortest form that reads back exactly.
func appendHumanFloat(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// AppendJSON appends m as one JSON object, without a newline. Empty optional
// fields are left out. Field names follow the Go field names in snake case:
//
//	{"name":"cpu.util","kind":"gauge","unit":"%","value":12.5,"time":"2026-11-21T10:00:00Z","host":"web1","resource_id":"total","labels":{"mode":"user"}}
func AppendJSON(b []byte, m *meter.Measurement) []byte {
	b = append(b, `{"name":`...)
	b = appendJSONString(b, m.Name)
	b = append(b, `,"kind":"`...)
	b = append(b, m.Kind.String()...)
	b = append(b, '"')
	if m.Unit != "" {
		b = append(b, `,"unit":`...)
		b = appendJSONString(b, m.Unit)
	}
	b = append(b, `,"value":`...)
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
		b = append(b, "null"...) // JSON has no NaN; Validate keeps these out anyway
	} else {
		b = strconv.AppendFloat(b, m.Value, 'g', -1, 64)
	}
	b = append(b, `,"time":"`...)
	b = m.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	for _, f := range [...]struct{ k, v string }{
		{`,"host":`, m.Host}, {`,"resource_id":`, m.ResourceID},
		{`,"project_id":`, m.ProjectID}, {`,"user_id":`, m.UserID},
	} {
		if f.v != "" {
			b = append(b, f.k...)
			b = appendJSONString(b, f.v)
		}
	}
	if len(m.Labels) > 0 {
		b = append(b, `,"labels":{`...)
		for i, l := range m.Labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, l.Key)
			b = append(b, ':')
			b = appendJSONString(b, l.Value)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping what RFC 8259
// requires and replacing invalid UTF-8 with U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
