package stage

import (
	"context"
	"log/slog"
	"time"

	"github.com/meterkit/meter"
)

// Stage processes batches of measurements. Process is the only method an
// author must write.
//
// Process appends what it makes of in to out and returns out, as append
// does: a stage that keeps a measurement appends it, one that drops it does
// not, one that derives a new meter appends the new measurement (beside its
// input unless told to drop the input). It never modifies in, nor any label
// slice inside it (drivers share label slices between measurements): to
// change labels it appends a measurement with a new slice. It keeps no
// reference to in or out after returning, but may keep label slices it made
// itself, to give them again.
//
// A stage never fails a batch because of its content: what it cannot
// process it drops and counts (see [Stats]). An error means the stage itself
// is broken: the composers log it and discard what Process returned with it
// (what they do with the batch, they document). Process returns soon after
// ctx is done.
//
// The same input and state give the same output in the same order. The
// composers (agent and publisher) never call Process concurrently on one
// Stage, nor with Tick, Checkpoint or Restore, nor after Close.
type Stage interface {
	Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error)
}

// Func adapts an ordinary function to the Stage interface.
type Func func(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error)

// Process calls f(ctx, in, out).
func (f Func) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	return f(ctx, in, out)
}

// Factory makes a Stage from its settings, the same config type drivers
// use. It checks the settings and fails with a clear error (which setting,
// what is wrong) rather than fail later in Process.
type Factory func(cfg meter.Config) (Stage, error)

// Checkpointer is a stateful stage's state out: Checkpoint returns the
// state that, given to Restore, makes the stage behave as it does now. The
// composers store it in their spool in the same transaction as the batch
// holding the stage's output, so that a crash never separates the two. A
// stage that is a Checkpointer is a Restorer too.
type Checkpointer interface {
	Checkpoint() ([]byte, error)
}

// Restorer is a stateful stage's state in: Restore replaces the stage's
// state with one that Checkpoint returned (perhaps by an earlier process).
// Bytes it cannot read are an error, and leave the state as it was.
type Restorer interface {
	Restore(state []byte) error
}

// Ticker is a stage that makes output without input: a window closing, a
// series going stale. The composer calls Tick now and then with the current
// time; Tick appends to out as Process does, and its output goes through the
// stages after it in a chain.
type Ticker interface {
	Tick(ctx context.Context, now time.Time, out []meter.Measurement) ([]meter.Measurement, error)
}

// StatsReporter is a stage that counts what it does. Stats may be called
// at any time, concurrently with Process (from the composer's stats line),
// so the counters are read atomically.
type StatsReporter interface {
	Stats() Stats
}

// Stats are a stage's counters since it was made. A stage leaves at zero
// the ones that do not apply to it. They are an slog.LogValuer, for the
// composers' periodic stats line.
type Stats struct {
	In       uint64 `log:"in"`           // measurements given to Process
	Out      uint64 `log:"out"`          // measurements appended to out, by Process and Tick
	Filtered uint64 `log:"filtered"`     // measurements removed on purpose: dropped by select, inputs an arithmetic was told to drop
	Dropped  uint64 `log:"dropped"`      // measurements the stage could not process: removed (a result out of range) or, past a memory bound, passed on unstaged
	Missing  uint64 `log:"missing"`      // outputs not made because one of their inputs was missing (arithmetic)
	Resets   uint64 `log:"resets"`       // counter resets seen (rate, delta)
	Late     uint64 `log:"late"`         // measurements too late for their window (aggregate)
	Series   uint64 `log:"series,gauge"` // series held in memory now, for a stage with per-series state
}

// LogValue returns the counters as a group, for slog.
func (s Stats) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Uint64("in", s.In), slog.Uint64("out", s.Out), slog.Uint64("filtered", s.Filtered),
		slog.Uint64("dropped", s.Dropped), slog.Uint64("missing", s.Missing), slog.Uint64("resets", s.Resets),
		slog.Uint64("late", s.Late), slog.Uint64("series", s.Series))
}

// add sums counters, for a chain.
func (s *Stats) add(o Stats) {
	s.Filtered += o.Filtered
	s.Dropped += o.Dropped
	s.Missing += o.Missing
	s.Resets += o.Resets
	s.Late += o.Late
	s.Series += o.Series
}

// Wrapper is a stage that decorates another one, such as the stage [Only]
// and [Named] return. Unwrap returns the stage it decorates, so that [As]
// finds the capabilities of the inner stage through the wrapper, as
// errors.As finds errors. A wrapper that must change what a capability does
// (a wrapper that rewrites output must rewrite Tick's output too) implements
// that capability itself; As finds the outermost one.
type Wrapper interface {
	Unwrap() Stage
}

// Unwrap returns the stage s decorates, or nil if s is not a [Wrapper].
func Unwrap(s Stage) Stage {
	if w, ok := s.(Wrapper); ok {
		return w.Unwrap()
	}
	return nil
}

// As finds the first stage in s's chain of wrappers (s, Unwrap(s),
// Unwrap(Unwrap(s)), …) that implements T, a capability interface, and
// returns it as T:
//
//	if r, ok := stage.As[stage.StatsReporter](s); ok {
//		log.Info("stage", "stats", r.Stats())
//	}
//
// The composers find every capability this way (io.Closer, Checkpointer,
// Restorer, Ticker, StatsReporter, Namer).
func As[T any](s Stage) (T, bool) {
	for depth := 0; s != nil && depth < maxWrappers; depth++ {
		if t, ok := s.(T); ok {
			return t, true
		}
		s = Unwrap(s)
	}
	var zero T
	return zero, false
}

// maxWrappers bounds the walk of As, so that a wrapper that unwraps to
// itself does not hang it.
const maxWrappers = 100

// Namer is a stage with a name: a [Chain] keys the state of its stages by
// their names, so that an edited chain restores each stage's state only
// into a stage of the same name, and starts renamed or new stages fresh.
type Namer interface {
	Name() string
}

// Named gives s a name (see [Namer]). The name of a stage made from a
// configuration file is the one the file gives, or its type, such as
// "levels". Named forwards everything else to s: it is a [Wrapper].
func Named(name string, s Stage) Stage {
	if s == nil {
		panic("stage: Named: nil stage")
	}
	if _, ok := s.(InPlacer); ok {
		return &namedInPlace{named{name: name, s: s}}
	}
	return &named{name: name, s: s}
}

type named struct {
	name string
	s    Stage
}

func (n *named) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	return n.s.Process(ctx, in, out)
}
func (n *named) Name() string  { return n.name }
func (n *named) Unwrap() Stage { return n.s }

// Name returns s's name: that of the first [Namer] found with [As], or "".
func Name(s Stage) string {
	if n, ok := As[Namer](s); ok {
		return n.Name()
	}
	return ""
}
