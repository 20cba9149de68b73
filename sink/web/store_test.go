package web_test

import (
	"context"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/sinktest"
	"github.com/meterkit/meter/sink/web"
)

func TestConformance(t *testing.T) {
	var s *web.Sink
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			var err error
			s, err = web.New()
			require.NoError(t, err)
			return s
		},
		Read:    func(*testing.T) []meter.Measurement { return s.Measurements() },
		Ordered: true,
	})
}

func TestConformanceWithServer(t *testing.T) {
	var s *web.Sink
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			var err error
			s, err = web.New(web.WithAddr("127.0.0.1:0"))
			require.NoError(t, err)
			return s
		},
		Read:    func(*testing.T) []meter.Measurement { return s.Measurements() },
		Ordered: true,
	})
}

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func gauge(name, host, res string, v float64, at time.Time, labels ...meter.Label) meter.Measurement {
	return meter.Measurement{Name: name, Kind: meter.Gauge, Unit: "%", Value: v, Time: at, Host: host, ResourceID: res, Labels: labels}
}

// A series is one whatever its reserved labels: meterkit.state changing does
// not split it, and the series shows the newest.
func TestReservedLabelsDoNotSplitSeries(t *testing.T) {
	s, err := web.New()
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, s.Write(ctx, []meter.Measurement{
		gauge("cpu.util", "h", "cpu0", 10, t0, meter.Label{Key: "mode", Value: "user"}, meter.Label{Key: meter.StateLabel, Value: "ok"}),
		gauge("cpu.util", "h", "cpu0", 95, t0.Add(time.Second), meter.Label{Key: "mode", Value: "user"}, meter.Label{Key: meter.StateLabel, Value: "critical"}),
		gauge("cpu.util", "h", "cpu0", 20, t0.Add(2*time.Second), meter.Label{Key: "mode", Value: "system"}),
	}))
	st := s.Stats()
	require.Equal(t, 2, st.Series, "mode splits, meterkit.state does not")
	require.Equal(t, 3, st.Points)
	ms := s.Measurements()
	require.Len(t, ms, 3)
	v, _ := ms[0].Label(meter.StateLabel)
	require.Equal(t, "critical", v, "the series shows the state it was last written with")
	require.NoError(t, s.Close(ctx))
}

// Beyond the bound the oldest points go first, and the bytes counted stay
// within it.
func TestBoundDropsOldestPoints(t *testing.T) {
	const max = 256 << 10
	s, err := web.New(web.WithMaxBytes(max))
	require.NoError(t, err)
	ctx := context.Background()
	const n = 50_000
	batch := make([]meter.Measurement, 0, 100)
	for i := 0; i < n; i += 100 {
		batch = batch[:0]
		for j := i; j < i+100; j++ {
			batch = append(batch, gauge("load", "h", "r"+strconv.Itoa(j%3), float64(j), t0.Add(time.Duration(j)*time.Millisecond)))
		}
		require.NoError(t, s.Write(ctx, batch))
		require.LessOrEqual(t, s.Stats().Bytes, int64(max))
	}
	st := s.Stats()
	require.Equal(t, 3, st.Series)
	require.Zero(t, st.DroppedSeries)
	require.Equal(t, uint64(n), st.Written)
	require.Equal(t, uint64(n), uint64(st.Points)+st.DroppedPoints)
	require.Greater(t, st.Points, (max/24)/2, "at least half the bound holds points")
	ms := s.Measurements()
	require.Len(t, ms, st.Points)
	// What is left is the newest, in order.
	for i, m := range ms {
		require.Equal(t, float64(n-len(ms)+i), m.Value)
	}
}

// With 100,000 series the bound holds too: series that were written least
// recently go once points alone cannot make room.
func TestBoundWith100000Series(t *testing.T) {
	const max = 8 << 20
	s, err := web.New(web.WithMaxBytes(max))
	require.NoError(t, err)
	ctx := context.Background()
	const n = 100_000
	batch := make([]meter.Measurement, 0, 1000)
	peak := int64(0)
	for i := 0; i < n; i += 1000 {
		batch = batch[:0]
		for j := i; j < i+1000; j++ {
			batch = append(batch, gauge("disk.used", "host-"+strconv.Itoa(j%100), "/dev/disk"+strconv.Itoa(j), float64(j), t0,
				meter.Label{Key: "fs", Value: "ext4"}))
		}
		require.NoError(t, s.Write(ctx, batch))
		peak = max64(peak, s.Stats().Bytes)
	}
	st := s.Stats()
	t.Logf("stats: %+v, peak bytes %d", st, peak)
	require.LessOrEqual(t, peak, int64(max))
	require.Greater(t, st.DroppedSeries, uint64(0), "8 MiB cannot hold 100,000 series")
	require.Equal(t, uint64(n), uint64(st.Series)+st.DroppedSeries)
	require.Equal(t, uint64(n), uint64(st.Points)+st.DroppedPoints)
	// The newest series stayed.
	ms := s.Measurements()
	require.Equal(t, float64(n-1), ms[len(ms)-1].Value)

	// With room enough, all stay.
	big, err := web.New(web.WithMaxBytes(256 << 20))
	require.NoError(t, err)
	for i := 0; i < n; i += 1000 {
		batch = batch[:0]
		for j := i; j < i+1000; j++ {
			batch = append(batch, gauge("disk.used", "host-"+strconv.Itoa(j%100), "/dev/disk"+strconv.Itoa(j), float64(j), t0))
		}
		require.NoError(t, big.Write(ctx, batch))
	}
	st = big.Stats()
	t.Logf("stats with room: %+v (%.0f bytes per series)", st, float64(st.Bytes)/n)
	require.Equal(t, n, st.Series)
	require.Zero(t, st.DroppedSeries)
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func TestStatsLogValue(t *testing.T) {
	var b strings.Builder
	log := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	log.Info("web stats", slog.Any("", web.Stats{Series: 2, Points: 5, Bytes: 100, MaxBytes: 200, DroppedPoints: 1, DroppedSeries: 3}))
	require.Equal(t, `level=INFO msg="web stats" series=2 points=5 bytes=100 max_bytes=200 written=0 dropped_points=1 dropped_series=3 state_changes=0 streams_dropped=0`+"\n", b.String())
}

// LogValue logs every field under its log tag, in field order (the
// convention of internal/statslog, which this package may not import).
func TestStatsLogValueFollowsTags(t *testing.T) {
	typ := reflect.TypeFor[web.Stats]()
	attrs := web.Stats{}.LogValue().Group()
	require.Len(t, attrs, typ.NumField())
	for i := range typ.NumField() {
		require.Equal(t, typ.Field(i).Tag.Get("log"), attrs[i].Key, typ.Field(i).Name)
	}
}

// BenchmarkWrite measures Write of a batch of 100 measurements of series
// that exist, with labels, under a bound that evicts (the store is full
// first), against a baseline measured in the same run, batch by batch in
// turn with it so that both see the same load: the least a store of
// series does per measurement — find the series by a key built beforehand
// in a map, keep the point in a ring — with the same loop around it (the
// batch's values and times set).
func BenchmarkWrite(b *testing.B) {
	s, err := web.New(web.WithMaxBytes(4 << 20))
	require.NoError(b, err)
	ctx := context.Background()
	batch := make([]meter.Measurement, 100)
	for i := range batch {
		batch[i] = meter.Measurement{Name: "net.bytes.received", Kind: meter.Cumulative, Unit: "B", Value: 1, Time: t0,
			Host: "host-" + strconv.Itoa(i%10), ResourceID: "eth" + strconv.Itoa(i),
			Labels: []meter.Label{{Key: "driver", Value: "virtio"}, {Key: meter.StateLabel, Value: "ok"}}}
	}
	// Fill the store to its bound first, so that every Write evicts as it
	// would in a long run.
	for i := 0; s.Stats().DroppedPoints == 0; i++ {
		for j := range batch {
			batch[j].Time = t0.Add(-time.Duration(i) * time.Hour)
		}
		require.NoError(b, s.Write(ctx, batch))
	}
	type point struct {
		t int64
		v float64
	}
	keys := make([]string, len(batch))
	slotOf := make(map[string]int, len(batch))
	for i := range batch {
		keys[i] = batch[i].Host + "\x00" + batch[i].ResourceID + "\x00" + batch[i].Name
		slotOf[keys[i]] = i
	}
	ring := make([]point, chunkPoints)
	last := make([]point, len(batch))
	pos := 0
	set := func(i int) {
		for j := range batch {
			batch[j].Value = float64(i)
			batch[j].Time = t0.Add(time.Duration(i) * time.Second)
		}
	}
	// Timed by groups of 16 batches, the baseline's then Write's in turn,
	// each group taking in about 1.5 evictions of a chunk: the medians leave
	// out the groups another process's time slice fell on (the machine may
	// be loaded), and the ratio compares the two under the same load.
	const group = 16
	var inWrite time.Duration
	writes, bases := make([]float64, 0, b.N/group+1), make([]float64, 0, b.N/group+1)
	b.ReportAllocs()
	b.ResetTimer()
	for k := 0; k < b.N; k += group {
		n := min(group, b.N-k)
		start := time.Now()
		for i := k; i < k+n; i++ {
			set(i)
			for j := range batch {
				m := &batch[j]
				p := point{m.Time.UnixNano(), m.Value}
				last[slotOf[keys[j]]] = p
				ring[pos%len(ring)] = p
				pos++
			}
		}
		mid := time.Now()
		for i := k; i < k+n; i++ {
			set(i)
			if err := s.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		end := time.Now()
		per := float64(n * len(batch))
		bases = append(bases, float64(mid.Sub(start).Nanoseconds())/per)
		writes = append(writes, float64(end.Sub(mid).Nanoseconds())/per)
		inWrite += end.Sub(mid)
	}
	b.StopTimer()
	median := func(d []float64) float64 {
		slices.Sort(d)
		return d[len(d)/2]
	}
	b.ReportMetric(float64(inWrite.Nanoseconds())/float64(b.N*len(batch)), "ns/measurement")
	w, base := median(writes), median(bases)
	b.ReportMetric(w, "median-ns/measurement")
	b.ReportMetric(base, "baseline-median-ns/measurement")
	b.ReportMetric(w/base, "x-baseline")
	b.ReportMetric(float64(testing.AllocsPerRun(10, func() { _ = s.Write(ctx, batch) }))/float64(len(batch)), "allocs/measurement")
	runtime.KeepAlive(last)
}

// chunkPoints is the size of the baseline's ring of points.
const chunkPoints = 1024

// The order of the labels does not split a series, and finding the series
// of a measurement whose labels come in another order allocates nothing.
func TestLabelOrderDoesNotSplitSeries(t *testing.T) {
	s, err := web.New()
	require.NoError(t, err)
	ctx := context.Background()
	a1, b2, c3 := meter.Label{Key: "a", Value: "1"}, meter.Label{Key: "b", Value: "2"}, meter.Label{Key: "c", Value: "3"}
	state := meter.Label{Key: meter.StateLabel, Value: "ok"}
	require.NoError(t, s.Write(ctx, []meter.Measurement{
		gauge("m", "h", "r", 1, t0, a1, b2),
		gauge("m", "h", "r", 2, t0.Add(time.Second), b2, a1),
		gauge("m", "h", "r", 3, t0.Add(2*time.Second), b2, state, a1),
	}))
	require.Equal(t, 1, s.Stats().Series, "{a=1,b=2}, {b=2,a=1} and {b=2,meterkit.state=ok,a=1} are one series")
	ms := s.Measurements()
	require.Len(t, ms, 3)
	require.Equal(t, []meter.Label{a1, b2, state}, ms[2].Labels, "the labels as first written, then the reserved ones")

	// Others are other series: a label fewer, more, or with another value.
	require.NoError(t, s.Write(ctx, []meter.Measurement{
		gauge("m", "h", "r", 4, t0, a1),
		gauge("m", "h", "r", 5, t0, b2),
		gauge("m", "h", "r", 6, t0, c3, a1, b2),
		gauge("m", "h", "r", 7, t0, meter.Label{Key: "b", Value: "1"}, meter.Label{Key: "a", Value: "2"}),
		gauge("m", "h", "r", 8, t0),
	}))
	require.Equal(t, 6, s.Stats().Series)

	batch := []meter.Measurement{gauge("m", "h", "r", 9, t0, b2, c3, a1), gauge("m", "h", "r", 10, t0, a1, c3, b2)}
	require.NoError(t, s.Write(ctx, batch))
	require.Equal(t, 6, s.Stats().Series)
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = s.Write(ctx, batch) }), "Write of existing series in any label order")
}
