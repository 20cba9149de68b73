package stagestate

import (
	"fmt"
	"reflect"

	"github.com/meterkit/meter/stage"
)

// Same reports whether a and b are the same value; values of types that
// cannot be compared (where == would panic) are never the same.
func Same(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Type() == vb.Type() && va.Comparable() && vb.Comparable() && a == b
}

// Keyed returns the stage whose state is that of s keyed by name: a chain
// of s alone when s has a name (one named stage keeps its state under its
// name, as in a chain, so that an edit to a chain of several finds it, in
// Reconfigure as after a restart), s itself otherwise (a chain, or one
// unnamed stage whose state is its own). The state files and [Carry] use
// the same form.
func Keyed(s stage.Stage) stage.Stage {
	if stage.Name(s) != "" {
		return stage.Chain(s)
	}
	return s
}

// Carry restores the state of the stages in use into the new ones, by
// key, unless they are the same. Both go by their keyed form (see [Keyed]),
// so that one named stage's state reaches the stage of that name in a
// chain, and back. Stages that keep no state, on either side, are left as
// they are.
func Carry(old, next stage.Stage) error {
	if old == nil || next == nil || Same(old, next) {
		return nil
	}
	old, next = Keyed(old), Keyed(next)
	cp, ok := stage.As[stage.Checkpointer](old)
	if !ok {
		return nil
	}
	r, ok := stage.As[stage.Restorer](next)
	if !ok {
		return nil
	}
	b, err := cp.Checkpoint()
	if err != nil {
		return fmt.Errorf("checkpoint the stages in use: %w", err)
	}
	if err := r.Restore(b); err != nil {
		return fmt.Errorf("give the new stages the state of those in use: %w", err)
	}
	return nil
}
