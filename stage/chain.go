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
//
// A batch whose [Origin] is marked OutOfOrder passes the chain's
// [OrderSensitive] stages unchanged (a nested chain skips its own);
// [IsOrderSensitive] reports whether a chain holds such a stage.
//
// Chain panics if a stage is nil or two stateful stages have the same key:
// these are programming errors (a configuration loader checks names first).
func Chain(stages ...Stage) Stage {
	c := &chain{stages: append([]Stage(nil), stages...), keys: make([]string, len(stages)), ordered: make([]bool, len(stages))}
	var stateful, ticking bool
	seen := map[string]bool{}
	for i, s := range stages {
		if s == nil {
			panic("stage: Chain: stage " + strconv.Itoa(i+1) + " is nil")
		}
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
	stages  []Stage
	keys    []string
	ordered []bool // stage i is OrderSensitive: skipped for a batch out of order
	anyOrd  bool   // a stage is, or holds one that is, order-sensitive
	bufs    [2][]meter.Measurement
	tick    []meter.Measurement
	in      atomic.Uint64
	out     atomic.Uint64
	closed  bool
}

func (c *chain) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	c.in.Add(uint64(len(in)))
	n := len(out)
	out, err := c.run(ctx, 0, in, out)
	if err != nil {
		return out[:n], err
	}
	c.out.Add(uint64(len(out) - n))
	return out, nil
}

// run runs stages[from:] on in, appending the result to out.
func (c *chain) run(ctx context.Context, from int, in, out []meter.Measurement) ([]meter.Measurement, error) {
	if from >= len(c.stages) {
		return append(out, in...), nil
	}
	cur := in
	k := 0 // the buffer the next stage writes: never the one cur is
	skip := false
	if c.anyOrd {
		o, _ := OriginFrom(ctx)
		skip = o.OutOfOrder
	}
	for i := from; i < len(c.stages); i++ {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if skip && c.ordered[i] {
			if i == len(c.stages)-1 {
				return append(out, cur...), nil
			}
			continue // cur passes unchanged
		}
		if i == len(c.stages)-1 {
			n := len(out)
			res, err := c.stages[i].Process(ctx, cur, out)
			if err != nil {
				return out[:n], c.wrap(i, err)
			}
			return res, nil
		}
		// Alternate between the two buffers: stage i reads one and writes
		// the other, never the one it reads.
		b := &c.bufs[k%2]
		k++
		res, err := c.stages[i].Process(ctx, cur, (*b)[:0])
		if err != nil {
			return out, c.wrap(i, err)
		}
		*b = res
		cur = res
	}
	return out, nil // not reached
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
		if out, err = c.run(ctx, i+1, c.tick, out); err != nil {
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
