package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/console"
)

var at = time.Date(2026, 11, 21, 10, 0, 0, 500, time.UTC)

var batch = []meter.Measurement{
	{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12.5, Time: at, Host: "web1", ResourceID: "total",
		Labels: []meter.Label{{Key: "mode", Value: "user"}}},
	{Name: "odd \"name\"\n\x01\xff", Kind: meter.Cumulative, Value: 3, Time: at, ProjectID: "p", UserID: "u"},
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	s, err := console.New(&buf)
	require.NoError(t, err)
	require.NoError(t, s.Write(context.Background(), batch[:1]))
	require.Equal(t, "2026-11-21T10:00:00.0000005Z web1 cpu.util[total] 12.5 % gauge mode=user\n", buf.String())
	require.NoError(t, s.Close(context.Background()))
	require.NoError(t, s.Close(context.Background()), "Close twice")
	require.Error(t, s.Write(context.Background(), batch))
}

func TestTextNumbers(t *testing.T) {
	for v, want := range map[float64]string{25323552768: "25323552768", 12.5: "12.5", -3: "-3", 1e20: "1e+20", 0.0001: "0.0001", 1.5e-7: "1.5e-07"} {
		m := meter.Measurement{Name: "n", Kind: meter.Gauge, Value: v, Time: at}
		line := string(console.AppendText(nil, &m, time.RFC3339))
		require.Contains(t, line, " n "+want+" gauge", "value %v", v)
	}
}

func TestJSONIsValidAndComplete(t *testing.T) {
	var buf bytes.Buffer
	s, err := console.New(&buf, console.WithFormat(console.JSON))
	require.NoError(t, err)
	require.NoError(t, s.Write(context.Background(), batch))
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	require.Len(t, lines, 2)

	var got struct {
		Name       string            `json:"name"`
		Kind       string            `json:"kind"`
		Unit       string            `json:"unit"`
		Value      float64           `json:"value"`
		Time       time.Time         `json:"time"`
		Host       string            `json:"host"`
		ResourceID string            `json:"resource_id"`
		ProjectID  string            `json:"project_id"`
		UserID     string            `json:"user_id"`
		Labels     map[string]string `json:"labels"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &got))
	require.Equal(t, "cpu.util", got.Name)
	require.Equal(t, "gauge", got.Kind)
	require.Equal(t, "%", got.Unit)
	require.Equal(t, 12.5, got.Value)
	require.True(t, at.Equal(got.Time))
	require.Equal(t, "web1", got.Host)
	require.Equal(t, "total", got.ResourceID)
	require.Equal(t, map[string]string{"mode": "user"}, got.Labels)

	got.Labels = nil
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &got))
	require.Equal(t, "odd \"name\"\n\x01\ufffd", got.Name)
	require.Equal(t, "cumulative", got.Kind)
	require.Equal(t, "p", got.ProjectID)
	require.Equal(t, "u", got.UserID)
}

func TestJSONDoesNotAllocate(t *testing.T) {
	b := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() { b = console.AppendJSON(b[:0], &batch[0]) })
	require.Zero(t, allocs)
}

func TestOpenURL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s, err := sink.Open(ctx, "console://"+path+"?format=json")
	require.NoError(t, err)
	require.NoError(t, s.Write(ctx, batch[:1]))
	require.NoError(t, s.Close(ctx))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, json.Valid(bytes.TrimSpace(b)), "%s", b)

	_, err = sink.Open(ctx, "console://?format=xml")
	require.ErrorContains(t, err, `unknown format "xml"`)
	_, err = sink.Open(ctx, "console://?colour=1")
	require.ErrorContains(t, err, `unknown parameter "colour"`)
	_, err = sink.Open(ctx, "console://elsewhere")
	require.ErrorContains(t, err, "console://stderr")
}

// A console:///path sink creates its file on the first Write, not when it
// is opened: checking a configuration leaves no file behind, and an
// unwritable path is the Write's error, tried again on the next Write.
func TestFileCreatedOnFirstWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "out.jsonl")
	s, err := sink.Open(ctx, "console://"+path+"?format=json")
	require.NoError(t, err)
	require.NoDirExists(t, filepath.Join(dir, "sub"))
	err = s.Write(ctx, batch)
	require.ErrorContains(t, err, "console: open "+path)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	require.NoFileExists(t, path)
	require.NoError(t, s.Write(ctx, batch))
	require.NoError(t, s.Close(ctx))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(b), "\n"))

	unused, err := console.Create(filepath.Join(dir, "never.txt"))
	require.NoError(t, err)
	require.NoError(t, unused.Close(ctx))
	require.NoError(t, unused.Close(ctx))
	require.NoFileExists(t, filepath.Join(dir, "never.txt"))
}
