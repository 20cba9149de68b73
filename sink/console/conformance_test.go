package console_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/console"
	"github.com/meterkit/meter/sink/sinktest"
)

// The console's store is what it wrote: Read parses the lines back.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format console.Format
		parse  func(t *testing.T, line string) meter.Measurement
	}{
		{"Text", console.Text, parseText},
		{"JSON", console.JSON, parseJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf *bytes.Buffer
			sinktest.Run(t, sinktest.Harness{
				New: func(*testing.T) sink.Sink {
					buf = new(bytes.Buffer)
					c, err := console.New(buf, console.WithFormat(tc.format))
					require.NoError(t, err)
					return c
				},
				Read: func(t *testing.T) []meter.Measurement {
					var ms []meter.Measurement
					sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
					for sc.Scan() {
						ms = append(ms, tc.parse(t, sc.Text()))
					}
					return ms
				},
				Ordered: true,
			})
		})
	}
}

// parseText reads a line of the Text format, for measurements whose strings
// hold no spaces:
//
//	TIME HOST NAME[RESOURCE] VALUE [UNIT] KIND [project=P] [user=U] [K=V...]
func parseText(t *testing.T, line string) meter.Measurement {
	t.Helper()
	f := strings.Fields(line)
	require.GreaterOrEqual(t, len(f), 5, "line %q", line)
	var m meter.Measurement
	var err error
	m.Time, err = time.Parse(time.RFC3339Nano, f[0])
	require.NoError(t, err, "line %q", line)
	if f[1] != "-" {
		m.Host = f[1]
	}
	m.Name = f[2]
	if i := strings.IndexByte(f[2], '['); i > 0 && strings.HasSuffix(f[2], "]") {
		m.Name, m.ResourceID = f[2][:i], f[2][i+1:len(f[2])-1]
	}
	m.Value, err = strconv.ParseFloat(f[3], 64)
	require.NoError(t, err, "line %q", line)
	rest := f[4:]
	if _, err := meter.ParseKind(rest[0]); err != nil {
		m.Unit, rest = rest[0], rest[1:]
	}
	require.NotEmpty(t, rest, "line %q: no kind", line)
	m.Kind, err = meter.ParseKind(rest[0])
	require.NoError(t, err, "line %q", line)
	rest = rest[1:]
	if v, ok := strings.CutPrefix(firstOf(rest), "project="); ok {
		m.ProjectID, rest = v, rest[1:]
	}
	if v, ok := strings.CutPrefix(firstOf(rest), "user="); ok {
		m.UserID, rest = v, rest[1:]
	}
	for _, kv := range rest {
		k, v, ok := strings.Cut(kv, "=")
		require.True(t, ok, "line %q: label %q", line, kv)
		m.Labels = append(m.Labels, meter.Label{Key: k, Value: v})
	}
	return m
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func parseJSON(t *testing.T, line string) meter.Measurement {
	t.Helper()
	var j struct {
		Name       string            `json:"name"`
		Kind       meter.Kind        `json:"kind"`
		Unit       string            `json:"unit"`
		Value      float64           `json:"value"`
		Time       time.Time         `json:"time"`
		Host       string            `json:"host"`
		ResourceID string            `json:"resource_id"`
		ProjectID  string            `json:"project_id"`
		UserID     string            `json:"user_id"`
		Labels     map[string]string `json:"labels"`
	}
	require.NoError(t, json.Unmarshal([]byte(line), &j), "line %q", line)
	m := meter.Measurement{Name: j.Name, Kind: j.Kind, Unit: j.Unit, Value: j.Value, Time: j.Time,
		Host: j.Host, ResourceID: j.ResourceID, ProjectID: j.ProjectID, UserID: j.UserID}
	for k, v := range j.Labels {
		m.Labels = append(m.Labels, meter.Label{Key: k, Value: v})
	}
	return m
}
