package stage

import (
	"context"

	"github.com/meterkit/meter"
)

// InPlacer is a stage that can also do its work in a batch its caller owns,
// without copying it: select and unit change or remove measurements where
// they are, levels sets their label slices. A [Chain] uses it to copy a
// batch once however many such stages it holds, and is itself an InPlacer,
// so that the agent and the publisher stage the buffer they already own.
//
// ProcessInPlace has the effect of Process(ctx, ms, nil) (the same output
// in the same order, the same state and counters after), but writes its
// output over ms: it may change the fields of ms's measurements, move them
// and drop them, and append when it adds measurements. It returns the
// output, which starts where ms starts unless it outgrew ms's capacity;
// the caller uses the result and no longer ms. It never changes an element
// of a label slice (drivers share label slices between measurements): it
// replaces the slice. After an error, ms holds no useful data.
//
// Unlike the other capabilities, InPlacer is found by a type assertion on
// the stage itself, never through a [Wrapper]: a wrapper that changes what
// its stage does would be bypassed. [Named] forwards it.
type InPlacer interface {
	ProcessInPlace(ctx context.Context, ms []meter.Measurement) ([]meter.Measurement, error)
}

// namedInPlace is Named of an InPlacer.
type namedInPlace struct{ named }

func (n *namedInPlace) ProcessInPlace(ctx context.Context, ms []meter.Measurement) ([]meter.Measurement, error) {
	return n.s.(InPlacer).ProcessInPlace(ctx, ms)
}
