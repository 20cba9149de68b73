package stagetest

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

func factory(s func() stage.Stage) stage.Factory {
	return func(meter.Config) (stage.Stage, error) { return s(), nil }
}

func pass(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	return append(out, in...), nil
}

// tagger adds a label the right way: a new slice per measurement.
func tagger(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	for _, m := range in {
		ls := make([]meter.Label, 0, len(m.Labels)+1)
		ls = append(append(ls, m.Labels...), meter.Label{Key: "tagged", Value: "yes"})
		m.Labels = ls
		out = append(out, m)
	}
	return out, nil
}

// counter is a stateful stage done right: it numbers measurements across
// batches, counts, and checkpoints its number.
type counter struct {
	n       uint64
	in, out uint64
}

func (c *counter) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	for _, m := range in {
		c.n++
		m.Value = float64(c.n)
		out = append(out, m)
	}
	c.in += uint64(len(in))
	c.out += uint64(len(in))
	return out, nil
}
func (c *counter) Stats() stage.Stats          { return stage.Stats{In: c.in, Out: c.out} }
func (c *counter) Checkpoint() ([]byte, error) { return binary.AppendUvarint(nil, c.n), nil }
func (c *counter) Restore(b []byte) error {
	n, k := binary.Uvarint(b)
	if k <= 0 || k != len(b) {
		return errors.New("counter: bad state")
	}
	c.n = n
	return nil
}
func (c *counter) Close() error { return nil }

func TestRunPassesGoodStages(t *testing.T) {
	t.Run("Pass", func(t *testing.T) { Run(t, factory(func() stage.Stage { return stage.Func(pass) }), meter.Config{}) })
	t.Run("Tagger", func(t *testing.T) { Run(t, factory(func() stage.Stage { return stage.Func(tagger) }), meter.Config{}) })
	t.Run("Counter", func(t *testing.T) { Run(t, factory(func() stage.Stage { return &counter{} }), meter.Config{}) })
	t.Run("Chain", func(t *testing.T) {
		Run(t, factory(func() stage.Stage {
			return stage.Chain(stage.Func(tagger), stage.Named("count", &counter{}), stage.Func(pass))
		}), meter.Config{})
	})
}

func TestMakeStage(t *testing.T) {
	_, err := makeStage(nil, meter.Config{})
	require.ErrorContains(t, err, "factory is nil")
	_, err = makeStage(func(meter.Config) (stage.Stage, error) { return nil, nil }, meter.Config{})
	require.ErrorContains(t, err, "nil stage")
	_, err = makeStage(func(meter.Config) (stage.Stage, error) { return nil, errors.New("bad factor") }, meter.Config{})
	require.ErrorContains(t, err, "bad factor")
	_, err = makeStage(func(meter.Config) (stage.Stage, error) { panic("boom") }, meter.Config{})
	require.ErrorContains(t, err, "panicked: boom")
}

func TestCatchesModifiedInput(t *testing.T) {
	for name, tc := range map[string]struct {
		f    stage.Func
		want string
	}{
		"value": {func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
			in[0].Value = 7
			return append(out, in...), nil
		}, "measurement 0 of the input changed"},
		"label in place": {func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
			for _, m := range in {
				if len(m.Labels) > 0 {
					m.Labels[0].Value = "changed"
				}
			}
			return append(out, in...), nil
		}, "never modify in or its label slices"},
		"label appended": {func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
			for _, m := range in {
				m.Labels = append(m.Labels, meter.Label{Key: "x", Value: "y"})
				out = append(out, m)
			}
			return out, nil
		}, "wrote past the end of the label slice"},
		"in appended": {func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
			in = append(in, in[0])
			return append(out, in...), nil
		}, "wrote past the end of in"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := runBatches(tc.f, Sample())
			require.ErrorIs(t, err, errInput)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestCatchesReplacedOut(t *testing.T) {
	fresh := stage.Func(func(_ context.Context, in, _ []meter.Measurement) ([]meter.Measurement, error) {
		return append([]meter.Measurement(nil), in...), nil
	})
	_, err := runBatches(fresh, Sample())
	require.ErrorIs(t, err, errOut)
}

func TestCatchesErrorsAndPanics(t *testing.T) {
	_, err := runBatches(stage.Func(func(context.Context, []meter.Measurement, []meter.Measurement) ([]meter.Measurement, error) {
		return nil, errors.New("levels: table corrupt")
	}), Sample())
	require.ErrorIs(t, err, errRun)
	require.ErrorContains(t, err, "table corrupt")
	_, err = runBatches(stage.Func(func(context.Context, []meter.Measurement, []meter.Measurement) ([]meter.Measurement, error) {
		panic("index out of range")
	}), Sample())
	require.ErrorContains(t, err, "Process panicked: index out of range")
}

func TestCatchesInvalidOutput(t *testing.T) {
	nan := stage.Func(func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
		for _, m := range in {
			m.Value = math.NaN()
			out = append(out, m)
		}
		return out, nil
	})
	res, err := runBatches(nan, Sample())
	require.NoError(t, err)
	require.ErrorContains(t, validate(res), "Value: NaN")
}

// buffered returns its own buffer instead of appending to out (after the
// prefix it copies): the next batch overwrites what it returned.
type buffered struct{ buf []meter.Measurement }

func (b *buffered) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	b.buf = append(append(b.buf[:0], out...), in...)
	for i := range b.buf {
		b.buf[i].Value++
	}
	b.buf[0].Value-- // the prefix unchanged
	return b.buf, nil
}

func TestCatchesOutputChangedLater(t *testing.T) {
	res, err := runBatches(&buffered{}, Sample())
	require.NoError(t, err)
	require.ErrorContains(t, checkKept(res), "the output of batch 1 changed after later batches")

	// A label slice cached and then changed in place.
	cached := []meter.Label{{Key: "state", Value: "0"}}
	n := 0
	relabel := stage.Func(func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
		n++
		cached[0].Value = string(rune('0' + n))
		for _, m := range in {
			m.Labels = cached
			out = append(out, m)
		}
		return out, nil
	})
	res, err = runBatches(relabel, Sample())
	require.NoError(t, err)
	require.ErrorContains(t, checkKept(res), "never change a label slice once given out")
}

func TestCatchesNondeterminism(t *testing.T) {
	calls := 0 // shared by every instance: a fresh stage does not start over
	shared := func() stage.Stage {
		return stage.Func(func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
			calls++
			for _, m := range in {
				m.Value = float64(calls)
				out = append(out, m)
			}
			return out, nil
		})
	}
	a, err := runBatches(shared(), Sample())
	require.NoError(t, err)
	b, err := runBatches(shared(), Sample())
	require.NoError(t, err)
	require.ErrorContains(t, sameOutput("fresh", a, b), "same output in the same order")
}

type miscounting struct{ counter }

func (m *miscounting) Stats() stage.Stats { return stage.Stats{In: m.in, Out: m.out / 2} }

func TestCatchesWrongStats(t *testing.T) {
	s := &miscounting{}
	res, err := runBatches(s, Sample())
	require.NoError(t, err)
	require.ErrorContains(t, checkStats(s, Sample(), res), "In counts every measurement")
	good := &counter{}
	res, err = runBatches(good, Sample())
	require.NoError(t, err)
	require.NoError(t, checkStats(good, Sample(), res))
	require.NoError(t, checkWrapped(good))
}

type forgetful struct{ counter }

func (f *forgetful) Restore([]byte) error { return nil } // ignores the state

func TestCatchesBrokenState(t *testing.T) {
	err := checkState(factory(func() stage.Stage { return &forgetful{} }), meter.Config{}, Sample())
	require.ErrorContains(t, err, "restored from the state after 1 batches")
	require.NoError(t, checkState(factory(func() stage.Stage { return &counter{} }), meter.Config{}, Sample()))
	// A Checkpointer without Restore.
	noRestore := factory(func() stage.Stage {
		c := &counter{}
		return struct {
			stage.Stage
			stage.Checkpointer
		}{stage.Func(c.Process), c}
	})
	require.ErrorContains(t, checkState(noRestore, meter.Config{}, Sample()), "not a Restorer")
}

func TestCatchesIgnoredContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	release := make(chan struct{})
	blocking := stage.Func(func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
		<-release // ignores ctx
		return out, nil
	})
	start := time.Now()
	err := checkCancelled(blocking, Sample()[0], 50*time.Millisecond)
	require.ErrorContains(t, err, "already-cancelled ctx had not returned after 50ms")
	require.Less(t, time.Since(start), 2*time.Second)
	close(release)
	require.NoError(t, checkCancelled(stage.Func(pass), Sample()[0], time.Second))
}

type badCloser struct {
	stage.Func
	calls int
}

func (b *badCloser) Close() error {
	b.calls++
	if b.calls > 1 {
		panic("close of closed channel")
	}
	return nil
}

func TestCatchesBadClose(t *testing.T) {
	require.ErrorContains(t, checkClose(&badCloser{Func: pass}), "second Close: panicked")
	require.NoError(t, checkClose(&counter{}))
}

func TestSample(t *testing.T) {
	for _, b := range Sample() {
		for _, m := range b {
			require.NoError(t, m.Validate())
		}
	}
	require.Len(t, HostBatches(1, 64, 140)[0], 64*9+1+3+140*3)
}

func TestCatchesLeakedGoroutine(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	release := make(chan struct{})
	leaky := stage.Func(func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
		go func() { <-release }() // never stopped by the stage
		return append(out, in...), nil
	})
	_, err := runBatches(leaky, Sample())
	require.NoError(t, err)
	err = checkLeaks(ignore)
	close(release)
	require.ErrorContains(t, err, "still running")
	require.NoError(t, goleak.Find(ignore), "the leaked goroutines end once released")
}

// ticker is a counter that also reports its number on Tick, counted.
type ticker struct{ counter }

func (c *ticker) Tick(_ context.Context, now time.Time, out []meter.Measurement) ([]meter.Measurement, error) {
	c.out++
	return append(out, meter.Measurement{Name: "stagetest.ticks", Kind: meter.Gauge, Value: float64(c.n), Time: now}), nil
}

// clumsy forgets its number before it finds the state bad.
type clumsy struct{ ticker }

func (c *clumsy) Restore(b []byte) error {
	c.n = 0
	return c.ticker.Restore(b)
}

// lenient takes anything as its state.
type lenient struct{ counter }

func (l *lenient) Restore(b []byte) error {
	n, _ := binary.Uvarint(b)
	l.n = n
	return nil
}

// invalidTick ticks out a measurement without a name.
type invalidTick struct{ ticker }

func (c *invalidTick) Tick(_ context.Context, now time.Time, out []meter.Measurement) ([]meter.Measurement, error) {
	c.out++
	return append(out, meter.Measurement{Kind: meter.Gauge, Time: now}), nil
}

// uncountedTick does not count what it ticks out.
type uncountedTick struct{ ticker }

func (c *uncountedTick) Tick(_ context.Context, now time.Time, out []meter.Measurement) ([]meter.Measurement, error) {
	return append(out, meter.Measurement{Name: "stagetest.ticks", Kind: meter.Gauge, Value: float64(c.n), Time: now}), nil
}

// freshTick returns a new slice from Tick.
type freshTick struct{ ticker }

func (c *freshTick) Tick(_ context.Context, now time.Time, _ []meter.Measurement) ([]meter.Measurement, error) {
	c.out++
	return []meter.Measurement{{Name: "stagetest.ticks", Kind: meter.Gauge, Time: now}}, nil
}

func TestCatchesBrokenRestoreAndTick(t *testing.T) {
	good := factory(func() stage.Stage { return &ticker{} })
	require.NoError(t, checkState(good, meter.Config{}, Sample()))
	require.NoError(t, checkRestoreGarbage(good, meter.Config{}, Sample()))
	require.NoError(t, checkTick(good, meter.Config{}, Sample()))
	t.Run("Good", func(t *testing.T) { Run(t, good, meter.Config{}) })

	err := checkRestoreGarbage(factory(func() stage.Stage { return &clumsy{} }), meter.Config{}, Sample())
	require.ErrorContains(t, err, "garbage to Restore after 1 batches")
	err = checkRestoreGarbage(factory(func() stage.Stage { return &lenient{} }), meter.Config{}, Sample())
	require.ErrorContains(t, err, "returned no error")

	err = checkTick(factory(func() stage.Stage { return &invalidTick{} }), meter.Config{}, Sample())
	require.ErrorContains(t, err, "stagetest: Tick at")
	require.ErrorContains(t, err, "invalid measurements")
	err = checkTick(factory(func() stage.Stage { return &uncountedTick{} }), meter.Config{}, Sample())
	require.ErrorContains(t, err, "by Process and Tick")
	err = checkTick(factory(func() stage.Stage { return &freshTick{} }), meter.Config{}, Sample())
	require.ErrorIs(t, err, errOut)

	// Tick's output after a restore is compared too: a Restore that keeps
	// all but what only Tick shows is caught.
	err = checkState(factory(func() stage.Stage { return &tickForgets{} }), meter.Config{}, Sample())
	require.ErrorContains(t, err, "Tick at")
}

// tickForgets restores what Process shows but not the ticks it has made.
type tickForgets struct {
	ticker
	ticks int
}

func (c *tickForgets) Tick(ctx context.Context, now time.Time, out []meter.Measurement) ([]meter.Measurement, error) {
	c.ticks++
	out, err := c.ticker.Tick(ctx, now, out)
	out[len(out)-1].Value = float64(c.ticks) + float64(c.in)
	return out, err
}
func (c *tickForgets) Checkpoint() ([]byte, error) { return binary.AppendUvarint(nil, c.n), nil }

func TestRunGivesAnOrigin(t *testing.T) {
	var seqs []uint64
	Run(t, factory(func() stage.Stage {
		return stage.Func(func(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
			o, ok := stage.OriginFrom(ctx)
			if !ok || o.Agent != "stagetest-agent" || o.Tenant != "stagetest" {
				return out, errors.New("no origin")
			}
			seqs = append(seqs, o.Seq)
			return append(out, in...), nil
		})
	}), meter.Config{})
	require.Equal(t, []uint64{1, 2, 3}, seqs[:3])
}
