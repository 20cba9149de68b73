package stage_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/stagetest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func gauge(name string, v float64) meter.Measurement {
	return meter.Measurement{Name: name, Kind: meter.Gauge, Value: v, Time: t0}
}

// add adds d to every value.
func add(d float64) stage.Func {
	return func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
		for _, m := range in {
			m.Value += d
			out = append(out, m)
		}
		return out, nil
	}
}

// double appends each measurement twice.
var double = stage.Func(func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	for _, m := range in {
		out = append(out, m, m)
	}
	return out, nil
})

// memo is a stateful, ticking, closing, counting stage: it remembers the
// last value and, on Tick, emits it as "memo.last".
type memo struct {
	last    float64
	closed  int
	in, out uint64
	fail    bool
}

func (s *memo) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	if s.fail {
		return append(out, gauge("half", 0)), errors.New("memo: broken")
	}
	for _, m := range in {
		s.last = m.Value
	}
	s.in += uint64(len(in))
	s.out += uint64(len(in))
	return append(out, in...), nil
}
func (s *memo) Tick(_ context.Context, now time.Time, out []meter.Measurement) ([]meter.Measurement, error) {
	m := gauge("memo.last", s.last)
	m.Time = now
	s.out++
	return append(out, m), nil
}
func (s *memo) Checkpoint() ([]byte, error) {
	return []byte(strconv.FormatFloat(s.last, 'g', -1, 64)), nil
}
func (s *memo) Restore(b []byte) error {
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	s.last = v
	return nil
}
func (s *memo) Close() error       { s.closed++; return nil }
func (s *memo) Stats() stage.Stats { return stage.Stats{In: s.in, Out: s.out, Dropped: 1, Series: 1} }
func values(ms []meter.Measurement) (v []float64) {
	for _, m := range ms {
		v = append(v, m.Value)
	}
	return v
}

func TestChainRunsInOrder(t *testing.T) {
	c := stage.Chain(add(1), double, add(10))
	out := []meter.Measurement{gauge("before", 0)}
	out, err := c.Process(context.Background(), []meter.Measurement{gauge("a", 1), gauge("b", 2)}, out)
	require.NoError(t, err)
	require.Equal(t, []float64{0, 12, 12, 13, 13}, values(out))

	empty := stage.Chain()
	out, err = empty.Process(context.Background(), []meter.Measurement{gauge("a", 1)}, nil)
	require.NoError(t, err)
	require.Equal(t, []float64{1}, values(out))

	_, isCheckpointer := c.(stage.Checkpointer)
	_, isTicker := c.(stage.Ticker)
	_, isCloser := c.(io.Closer)
	require.False(t, isCheckpointer, "a chain of stateless stages has no state")
	require.False(t, isTicker, "a chain without tickers does not tick")
	require.True(t, isCloser)
}

func TestChainDoesNotAllocateOnceWarm(t *testing.T) {
	c := stage.Chain(add(1), double, add(10), double)
	in := stagetest.HostBatches(1, 8, 4)[0]
	out := make([]meter.Measurement, 0, 4*len(in))
	allocs := testing.AllocsPerRun(50, func() {
		var err error
		out, err = c.Process(context.Background(), in, out[:0])
		if err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
	require.Len(t, out, 4*len(in))
}

func TestChainErrorKeepsOut(t *testing.T) {
	c := stage.Chain(add(1), stage.Named("broken", &memo{fail: true}))
	out := []meter.Measurement{gauge("before", 0)}
	out, err := c.Process(context.Background(), []meter.Measurement{gauge("a", 1)}, out)
	require.EqualError(t, err, "stage: chain: stage broken: memo: broken")
	require.Len(t, out, 1, "a failed chain returns out as it was")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = stage.Chain(add(1)).Process(ctx, []meter.Measurement{gauge("a", 1)}, nil)
	require.ErrorIs(t, err, context.Canceled)
}

func TestChainStateKeyedByName(t *testing.T) {
	a, b := &memo{}, &memo{}
	c := stage.Chain(stage.Named("first", a), add(100), stage.Named("second", b))
	_, err := c.Process(context.Background(), []meter.Measurement{gauge("x", 1), gauge("x", 2)}, nil)
	require.NoError(t, err)
	require.Equal(t, 2.0, a.last)
	require.Equal(t, 102.0, b.last)
	cp, ok := c.(stage.Checkpointer)
	require.True(t, ok)
	state, err := cp.Checkpoint()
	require.NoError(t, err)
	require.JSONEq(t, `{"first": 2, "second": 102}`, string(state), "JSON states as they are")
	// Written by earlier releases: each state as a base64 string.
	old, err := json.Marshal(map[string][]byte{"first": []byte("2"), "second": []byte("102")})
	require.NoError(t, err)
	fromOld := &memo{}
	require.NoError(t, stage.Chain(stage.Named("first", fromOld)).(stage.Restorer).Restore(old))
	require.Equal(t, 2.0, fromOld.last)

	// An edited chain: "second" kept, "first" renamed, a new stage added.
	renamed, kept, added := &memo{last: -1}, &memo{last: -1}, &memo{last: -1}
	edited := stage.Chain(stage.Named("renamed", renamed), stage.Named("second", kept), stage.Named("third", added))
	require.NoError(t, edited.(stage.Restorer).Restore(state))
	require.Equal(t, -1.0, renamed.last, "a renamed stage starts fresh")
	require.Equal(t, 102.0, kept.last)
	require.Equal(t, -1.0, added.last)

	require.ErrorContains(t, edited.(stage.Restorer).Restore([]byte("{")), "stage: chain: restore")
	require.ErrorContains(t, edited.(stage.Restorer).Restore([]byte(`{"second": "eA=="}`)), "restore second")

	// Unnamed stateful stages are keyed by position.
	un := stage.Chain(add(1), &memo{last: 5})
	state, err = un.(stage.Checkpointer).Checkpoint()
	require.NoError(t, err)
	require.JSONEq(t, `{"#2": 5}`, string(state))

	require.PanicsWithValue(t, `stage: Chain: two stateful stages named "x": give each its own name`, func() {
		stage.Chain(stage.Named("x", &memo{}), stage.Named("x", &memo{}))
	})
	require.Panics(t, func() { stage.Chain(add(1), nil) })
	require.NotPanics(t, func() { stage.Chain(stage.Named("x", add(1)), stage.Named("x", add(2))) }, "stateless stages may share a name")
}

func TestChainTickCloseStats(t *testing.T) {
	m := &memo{last: 7}
	c := stage.Chain(add(1), stage.Named("memo", m), double, add(10))
	tk, ok := c.(stage.Ticker)
	require.True(t, ok)
	now := t0.Add(time.Hour)
	out, err := tk.Tick(context.Background(), now, nil)
	require.NoError(t, err)
	require.Equal(t, []float64{17, 17}, values(out), "tick output runs through the stages after the ticker only")
	require.Equal(t, now, out[0].Time)

	_, err = c.Process(context.Background(), []meter.Measurement{gauge("x", 1), gauge("y", 2)}, nil)
	require.NoError(t, err)
	st := c.(stage.StatsReporter).Stats()
	require.Equal(t, stage.Stats{In: 2, Out: 2 + 4, Dropped: 1, Series: 1}, st)

	require.NoError(t, c.(io.Closer).Close())
	require.NoError(t, c.(io.Closer).Close())
	require.Equal(t, 1, m.closed, "Close closes each stage once")
}

// wrapper forwards Process only.
type wrapper struct{ s stage.Stage }

func (w wrapper) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	return w.s.Process(ctx, in, out)
}
func (w wrapper) Unwrap() stage.Stage { return w.s }

func TestAsAndNamed(t *testing.T) {
	m := &memo{}
	w := wrapper{stage.Named("inner", m)}
	r, ok := stage.As[stage.StatsReporter](w)
	require.True(t, ok)
	require.Same(t, m, r.(*memo))
	require.Equal(t, "inner", stage.Name(w))
	require.Equal(t, "outer", stage.Name(stage.Named("outer", w)), "the outermost name wins")
	require.Equal(t, "", stage.Name(add(1)))
	_, ok = stage.As[stage.Ticker](add(1))
	require.False(t, ok)
	require.Nil(t, stage.Unwrap(add(1)))
	require.Same(t, m, stage.Unwrap(stage.Named("x", m)))

	// A chain of wrapped stateful stages is stateful.
	c := stage.Chain(wrapper{stage.Named("w", m)})
	_, ok = c.(stage.Checkpointer)
	require.True(t, ok)
}

func TestOnly(t *testing.T) {
	s := stage.Only(stage.MustCompileMeters("cpu.*"), add(100))
	in := []meter.Measurement{gauge("cpu.util", 1), gauge("memory.used", 2), gauge("cpu.time", 3)}
	out, err := s.Process(context.Background(), in, nil)
	require.NoError(t, err)
	require.Equal(t, []float64{101, 103, 2}, values(out), "the selected measurements, staged, then the others")
	require.NotNil(t, stage.Unwrap(s))
	require.Equal(t, 0, len(stage.MustCompileMeters().Patterns()))

	stagetest.Run(t, func(meter.Config) (stage.Stage, error) {
		return stage.Only(stage.MustCompileMeters("cpu.*"), add(1)), nil
	}, meter.Config{})
}

func nop(meter.Config) (stage.Stage, error) { return add(0), nil }

func TestRegistry(t *testing.T) {
	r := stage.NewRegistry()
	_, err := r.Lookup("levels")
	require.EqualError(t, err, `stage: unknown stage "levels" (forgotten import?); registered: none`)
	r.Register("unit", nop)
	r.Register("a.x_y-z", nop)
	require.Equal(t, []string{"a.x_y-z", "unit"}, r.Stages())
	_, err = r.Lookup("levels")
	require.EqualError(t, err, `stage: unknown stage "levels" (forgotten import?); registered: a.x_y-z, unit`)
	s, err := r.Open("unit", meter.Config{})
	require.NoError(t, err)
	require.NotNil(t, s)

	require.PanicsWithValue(t, `stage: Register called twice for stage "unit"`, func() { r.Register("unit", nop) })
	require.PanicsWithValue(t, `stage: Register: nil factory for stage "c"`, func() { r.Register("c", nil) })
	for _, bad := range []string{"", "Upper", "9lives", "has space", "x/y", string(make([]byte, 64))} {
		require.Panics(t, func() { r.Register(bad, nop) }, "name %q", bad)
	}

	r.Register("fails", func(meter.Config) (stage.Stage, error) { return nil, errors.New("bad factor") })
	r.Register("nil", func(meter.Config) (stage.Stage, error) { return nil, nil })
	_, err = r.Open("fails", meter.Config{})
	require.EqualError(t, err, `stage "fails": bad factor`)
	_, err = r.Open("nil", meter.Config{})
	require.ErrorContains(t, err, "nil stage")
	require.NotNil(t, stage.Default())
}

func TestStatsLogValue(t *testing.T) {
	v := stage.Stats{In: 3, Out: 2, Filtered: 1}.LogValue()
	require.Equal(t, "[in=3 out=2 filtered=1 dropped=0 missing=0 resets=0 late=0 series=0]", v.String())
}

// loop unwraps to itself.
type loop struct{ stage.Func }

func (l *loop) Unwrap() stage.Stage { return l }

func TestAsStopsOnALoop(t *testing.T) {
	_, ok := stage.As[stage.Ticker](&loop{add(1)})
	require.False(t, ok)
}
