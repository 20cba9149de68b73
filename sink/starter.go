package sink

import (
	"context"
	"fmt"
)

// Starter is implemented by sinks that have something to start before the
// first batch, such as a server (sink/web's live view): the publisher's Run
// calls Start on each of its sinks that has one before it receives, and
// fails, naming the sink, when a Start fails (a port in use), so that a
// program learns it at once rather than at the first batch. ctx bounds the
// start only (resolving, binding): what it starts runs until Close. Start
// does nothing when the sink is started already; after Close it fails with
// an error wrapping [ErrClosed].
//
// Starting changes nothing of what reaches the store, so, as a read-only
// capability, [As] finds it below any wrapper that has an Unwrap method
// (those made with [Wrap] have one): a wrapper's Close closes what the
// inner sink started. A sink found behind a wrapper without Unwrap is not
// started by the publisher: it must start by itself, on its first Write, as
// sink/web does. [Fanout] starts each of its children that is a Starter.
type Starter interface {
	Start(ctx context.Context) error
}

// Start starts every child that is a Starter (found with [As]), in order,
// and stops at the first that fails.
func (f *fanout) Start(ctx context.Context) error {
	if f.closed {
		return fmt.Errorf("sink: fanout: start after Close: %w", ErrClosed)
	}
	for i, s := range f.sinks {
		if st, ok := As[Starter](s); ok {
			if err := st.Start(ctx); err != nil {
				return fmt.Errorf("sink %d (%T): %w", i, s, err)
			}
		}
	}
	return nil
}
