package stage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/meterkit/meter"
)

// Chain runs stages in order, each on the output of the one before, and is
// itself a Stage. It reuses its internal buffers from batch to batch, so that
// once warm it allocates nothing of its own. It keeps the measurements of the
// last batch in those buffers until the next one; it never reads them again.
// A run of stages that are [InPlacer]s works in one copy of the batch, in
// out itself when they end the chain: select + unit + levels copy each
// measurement once.
//
// The chain has the capabilities its stages have, found with [As]:
//
//   - io.Closer, always: Close closes every stage that is an io.Closer, in
//     order, once, and joins their errors.
//   - Checkpointer and Restorer, when a stage is a Checkpointer: the state is
//     a JSON object of each stateful stage's state under its key, its name
//     ([Named]) or, for an unnamed stage, its position ("#1" for the first);
//     a state that is JSON (not a string) is written as it is, any other as
//     a base64 string.
//     Restore gives each stage the state under its key and leaves stages
//     whose key is absent fresh, so an edited chain keeps the state of the
//     stages it kept and starts renamed or new ones afresh (name the stages
//     of a chain that is edited: positions shift).
//   - Ticker, when a stage is a Ticker: Tick ticks each such stage in order
//     and runs what it makes through the stages after it.
//   - StatsReporter, always: In and Out count the chain's own input and
//     output; the other counters are the sums of its stages'.
//   - InPlacer, always: ProcessInPlace runs the stages in the caller's
//     batch, with a buffer of the chain between stages that are not
//     InPlacers.
//
// A batch whose [Origin] is marked OutOfOrder passes the chain's
// [OrderSensitive] stages unchanged (a nested chain skips its own);
// [IsOrderSensitive] reports whether a chain holds such a stage.
//
// Chain panics if a stage is nil or two stateful stages have the same key:
// these are programming errors (a configuration loader checks names first).
func Chain(stages ...Stage) Stage {
	c := &chain{stages: append([]Stage(nil), stages...), keys: make([]string, len(stages)), ordered: make([]bool, len(stages)),
		inPlace: make([]InPlacer, len(stages)), tailInPlace: make([]bool, len(stages))}
	var stateful, ticking bool
	seen := map[string]bool{}
	for i, s := range stages {
		if s == nil {
			panic("stage: Chain: stage " + strconv.Itoa(i+1) + " is nil")
		}
		c.inPlace[i], _ = s.(InPlacer)
		key := Name(s)
		if key == "" {
			key = "#" + strconv.Itoa(i+1)
		}
		c.keys[i] = key
		if o, ok := As[OrderSensitive](s); ok && o.OrderSensitive() {
			c.ordered[i], c.anyOrd = true, true
		} else if IsOrderSensitive(s) {
			c.anyOrd = true
		}
		if _, ok := As[Checkpointer](s); ok {
			stateful = true
			if seen[key] {
				panic(fmt.Sprintf("stage: Chain: two stateful stages named %q: give each its own name", key))
			}
			seen[key] = true
		}
		if _, ok := As[Ticker](s); ok {
			ticking = true
		}
	}
	for i := len(stages) - 2; i >= 0; i-- {
		c.tailInPlace[i] = c.inPlace[i+1] != nil && c.tailInPlace[i+1]
	}
	if len(stages) > 0 {
		c.tailInPlace[len(stages)-1] = true
	}
	switch {
	case stateful && ticking:
		return &statefulTickingChain{c}
	case stateful:
		return &statefulChain{c}
	case ticking:
		return &tickingChain{c}
	}
	return c
}

type chain struct {
	stages      []Stage
	inPlace     []InPlacer // stages[i] when it is one, or nil
	tailInPlace []bool     // every stage after stages[i] is an InPlacer
	keys        []string
	ordered     []bool // stage i is OrderSensitive: skipped for a batch out of order
	anyOrd      bool   // a stage is, or holds one that is, order-sensitive
	bufs        [2][]meter.Measurement
	tick        []meter.Measurement
	in          atomic.Uint64
	out         atomic.Uint64
	closed      bool
}

func (c *chain) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	c.in.Add(uint64(len(in)))
	n := len(out)
	out, err := c.run(ctx, 0, in, false, out, n)
	if err != nil {
		return out[:n], err
	}
	c.out.Add(uint64(len(out) - n))
	return out, nil
}

func (c *chain) ProcessInPlace(ctx context.Context, ms []meter.Measurement) ([]meter.Measurement, error) {
	c.in.Add(uint64(len(ms)))
	out, err := c.run(ctx, 0, ms, true, ms, 0)
	if err != nil {
		return ms[:0], err
	}
	c.out.Add(uint64(len(out)))
	return out, nil
}

// Where run's current batch is.
const (
	inCaller = -1 // the caller's input: read only
	inDst    = 2  // dst[n:]: the output, owned
	// 0 and 1: c.bufs[0] and c.bufs[1], owned
)

// run runs stages[from:] on cur and returns dst[:n] followed by their
// output. cur is dst[n:] when inPlace, else the caller's, which run never
// changes. Each stage that is an InPlacer works where the batch is, unless
// that is the caller's input; another stage copies it into dst when only
// InPlacers follow, else into the chain buffer the batch is not in.
func (c *chain) run(ctx context.Context, from int, cur []meter.Measurement, inPlace bool, dst []meter.Measurement, n int) ([]meter.Measurement, error) {
	at := inCaller
	if inPlace {
		at = inDst
	}
	skip := false
	if c.anyOrd {
		o, _ := OriginFrom(ctx)
		skip = o.OutOfOrder
	}
	for i := from; i < len(c.stages); i++ {
		if err := ctx.Err(); err != nil {
			return dst[:n], err
		}
		if skip && c.ordered[i] {
			continue // cur passes unchanged
		}
		if ip := c.inPlace[i]; ip != nil && at != inCaller {
			res, err := ip.ProcessInPlace(ctx, cur)
			if err != nil {
				return dst[:n], c.wrap(i, err)
			}
			if at == inDst {
				dst = adopt(dst, n, res)
				cur = dst[n:]
			} else {
				c.bufs[at], cur = res, res
			}
			continue
		}
		if c.tailInPlace[i] && at != inDst {
			res, err := c.stages[i].Process(ctx, cur, dst[:n])
			if err != nil {
				return dst[:n], c.wrap(i, err)
			}
			dst, cur, at = res, res[n:], inDst
			continue
		}
		// Alternate between the two buffers: stage i reads one and writes
		// the other, never the one it reads.
		k := 0
		if at == 0 {
			k = 1
		}
		res, err := c.stages[i].Process(ctx, cur, c.bufs[k][:0])
		if err != nil {
			return dst[:n], c.wrap(i, err)
		}
		c.bufs[k], cur, at = res, res, k
	}
	if at != inDst {
		dst = append(dst[:n], cur...)
	}
	return dst, nil
}

// adopt returns dst[:n] followed by res, the output of an InPlacer given
// dst[n:]: dst itself when res is still where dst[n:] was.
func adopt(dst []meter.Measurement, n int, res []meter.Measurement) []meter.Measurement {
	switch {
	case len(res) == 0:
		return dst[:n]
	case n == 0:
		return res
	case n < cap(dst) && &dst[:n+1][n] == &res[0]:
		return dst[:n+len(res)]
	}
	return append(dst[:n], res...)
}

func (c *chain) orderSensitive() bool { return c.anyOrd }

func (c *chain) wrap(i int, err error) error {
	return fmt.Errorf("stage: chain: stage %s: %w", c.keys[i], err)
}

func (c *chain) Stats() Stats {
	s := Stats{In: c.in.Load(), Out: c.out.Load()}
	for _, st := range c.stages {
		if r, ok := As[StatsReporter](st); ok {
			s.add(r.Stats())
		}
	}
	return s
}

func (c *chain) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	for i, s := range c.stages {
		if cl, ok := As[io.Closer](s); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, c.wrap(i, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *chain) checkpoint() ([]byte, error) {
	state := map[string]json.RawMessage{}
	for i, s := range c.stages {
		if cp, ok := As[Checkpointer](s); ok {
			b, err := cp.Checkpoint()
			if err != nil {
				return nil, fmt.Errorf("stage: chain: checkpoint %s: %w", c.keys[i], err)
			}
			state[c.keys[i]] = embed(b)
		}
	}
	return json.Marshal(state) // keys sorted: the same state gives the same bytes
}

// embed returns a stage's state as a JSON value: a JSON object, array,
// number, true, false or null as it is (no second encoding), anything else
// (a JSON string included) as a base64 string.
func embed(b []byte) json.RawMessage {
	if len(b) > 0 && b[0] != '"' && json.Valid(b) {
		return b
	}
	enc, _ := json.Marshal(b) // a []byte always encodes
	return enc
}

func (c *chain) restore(b []byte) error {
	var state map[string]json.RawMessage
	if err := json.Unmarshal(b, &state); err != nil {
		return fmt.Errorf("stage: chain: restore: %w", err)
	}
	for i, s := range c.stages {
		raw, ok := state[c.keys[i]]
		if !ok {
			continue
		}
		st := []byte(raw)
		if len(raw) > 0 && raw[0] == '"' { // base64 (embed)
			if err := json.Unmarshal(raw, &st); err != nil {
				return fmt.Errorf("stage: chain: restore %s: %w", c.keys[i], err)
			}
		}
		if r, ok := As[Restorer](s); ok {
			if err := r.Restore(st); err != nil {
				return fmt.Errorf("stage: chain: restore %s: %w", c.keys[i], err)
			}
		}
	}
	return nil
}

func (c *chain) tickAll(ctx context.Context, now time.Time, out []meter.Measurement) ([]meter.Measurement, error) {
	n := len(out)
	for i, s := range c.stages {
		t, ok := As[Ticker](s)
		if !ok {
			continue
		}
		var err error
		c.tick, err = t.Tick(ctx, now, c.tick[:0])
		if err != nil {
			return out[:n], c.wrap(i, err)
		}
		if len(c.tick) == 0 {
			continue
		}
		if out, err = c.run(ctx, i+1, c.tick, false, out, len(out)); err != nil {
			return out[:n], err
		}
	}
	c.out.Add(uint64(len(out) - n))
	return out, nil
}

type statefulChain struct{ *chain }

func (c *statefulChain) Checkpoint() ([]byte, error) { return c.checkpoint() }
func (c *statefulChain) Restore(b []byte) error      { return c.restore(b) }

type tickingChain struct{ *chain }

func (c *tickingChain) Tick(ctx context.Context, now time.Time, out []meter.Measurement) ([]meter.Measurement, error) {
	return c.tickAll(ctx, now, out)
}

type statefulTickingChain struct{ *chain }

func (c *statefulTickingChain) Checkpoint() ([]byte, error) { return c.checkpoint() }
func (c *statefulTickingChain) Restore(b []byte) error      { return c.restore(b) }
func (c *statefulTickingChain) Tick(ctx context.Context, now time.Time, out []meter.Measurement) ([]meter.Measurement, error) {
	return c.tickAll(ctx, now, out)
}
