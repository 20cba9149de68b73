package statslog_test

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/internal/statslog"
)

type stats struct {
	Added    uint64 `log:"added"`
	Measured uint64 `log:"acked"`
	Queued   int    `log:"queued_batches,gauge"`
	Hidden   uint64
	Skipped  uint64 `log:"-"`
}

func (s stats) LogValue() slog.Value { return statslog.Value(s) }

func TestValueKeysInFieldOrder(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	log.Info("agent stats", slog.Any("", stats{Added: 3, Measured: 2, Queued: -1, Hidden: 9, Skipped: 8}))
	require.Equal(t, "level=INFO msg=\"agent stats\" added=3 acked=2 queued_batches=-1\n", b.String())
}

func TestValueJSON(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	log.Info("s", "stats", stats{Added: 1})
	require.Equal(t, `{"level":"INFO","msg":"s","stats":{"added":1,"acked":0,"queued_batches":0}}`+"\n", b.String())
}

func TestValueRefusesNonNumbers(t *testing.T) {
	type bad struct {
		Name string `log:"name"`
	}
	require.PanicsWithValue(t, "statslog: statslog_test.bad.Name: field of type string cannot be logged",
		func() { statslog.Value(bad{}) })
	require.Panics(t, func() { statslog.Value(&stats{}) })
}

func TestEvery(t *testing.T) {
	var mu syncBuffer
	log := slog.New(slog.NewTextHandler(&mu, nil))
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	done := make(chan struct{})
	go func() {
		statslog.Every(ctx, log, "publisher stats", time.Millisecond, func() slog.LogValuer { n++; return stats{Added: uint64(n)} })
		close(done)
	}()
	require.Eventually(t, func() bool { return strings.Count(mu.String(), "\n") >= 3 }, 5*time.Second, time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Every did not return when its context ended")
	}
	require.Contains(t, mu.String(), `msg="publisher stats" added=1 acked=0`)
	require.Contains(t, mu.String(), `msg="publisher stats" added=2 acked=0`)

	// Zero is never: Every returns at once and logs nothing.
	var b bytes.Buffer
	statslog.Every(context.Background(), slog.New(slog.NewTextHandler(&b, nil)), "x", 0, nil)
	require.Empty(t, b.String())
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

func TestFields(t *testing.T) {
	fs := statslog.Fields(reflect.TypeFor[stats]())
	require.Equal(t, []statslog.Field{{Index: 0, Key: "added"}, {Index: 1, Key: "acked"}, {Index: 2, Key: "queued_batches", Gauge: true}}, fs)
	v := reflect.ValueOf(stats{Added: 7, Queued: -2})
	require.Equal(t, 7.0, statslog.Number(v, fs[0]))
	require.Equal(t, -2.0, statslog.Number(v, fs[2]))
	type bad struct {
		N uint64 `log:"n,counter"`
	}
	require.PanicsWithValue(t, `statslog: statslog_test.bad.N: unknown tag option "counter"`,
		func() { statslog.Fields(reflect.TypeFor[bad]()) })
}

func TestWithGroup(t *testing.T) {
	type s struct {
		A uint64 `log:"a"`
	}
	v := statslog.Value(s{A: 1})
	require.Equal(t, v, statslog.WithGroup(v, "stages", nil), "nothing to add")
	got := statslog.WithGroup(v, "stages", []slog.Attr{slog.Group("rate", slog.Uint64("in", 2))})
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("m", slog.Any("", got))
	require.Contains(t, b.String(), " a=1 stages.rate.in=2\n")
}
