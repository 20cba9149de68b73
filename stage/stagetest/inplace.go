package stagetest

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

// checkInPlace gives the batches to a fresh stage's ProcessInPlace, each in
// a guarded copy, and compares what it returns with what Process returned
// (want), its label slices with what they were, and its counters.
func checkInPlace(f stage.Factory, cfg meter.Config, batches [][]meter.Measurement, want []result) error {
	s, err := makeStage(f, cfg)
	if err != nil {
		return err
	}
	defer closeQuietly(s)
	ip, ok := s.(stage.InPlacer)
	if !ok {
		return nil
	}
	if _, ok := stage.Named("stagetest", s).(stage.InPlacer); !ok {
		return fmt.Errorf("stagetest: stage.Named does not forward stage.InPlacer")
	}
	var in, out uint64
	for i, batch := range batches {
		what := "batch " + strconv.Itoa(i+1) + " of " + strconv.Itoa(len(batches))
		ms := guarded(batch)
		labels := make([][]meter.Label, len(ms)) // the slices given, and what they held
		before := make([][]meter.Label, len(ms))
		for j := range ms {
			labels[j] = ms[j].Labels
			before[j] = append([]meter.Label(nil), ms[j].Labels...)
		}
		got, p, err := processInPlace(ip, ms)
		switch {
		case p != nil:
			return fmt.Errorf("stagetest: %s: ProcessInPlace panicked: %v", what, p)
		case err != nil:
			return fmt.Errorf("stagetest: %s: ProcessInPlace returned an error: %v", what, err)
		}
		for j := range labels {
			if !slices.Equal(labels[j], before[j]) {
				return fmt.Errorf("stagetest: %s: ProcessInPlace changed the label slice of measurement %d from %+v to %+v; "+
					"replace a measurement's label slice, never change its elements", what, j, before[j], labels[j])
			}
			ls := labels[j][:cap(labels[j])]
			for k := len(labels[j]); k < len(ls); k++ {
				if ls[k] != sentinel {
					return fmt.Errorf("stagetest: %s: ProcessInPlace wrote past the end of the label slice of measurement %d (%+v)", what, j, ls[k])
				}
			}
		}
		if err := same(want[i].copy, got); err != nil {
			return fmt.Errorf("stagetest: %s: ProcessInPlace and Process differ: %v; ProcessInPlace does what Process does, in the slice given", what, err)
		}
		in += uint64(len(batch))
		out += uint64(len(got))
	}
	if r, ok := stage.As[stage.StatsReporter](s); ok {
		if st := r.Stats(); st.In != in || st.Out != out {
			return fmt.Errorf("stagetest: after ProcessInPlace, Stats() says in=%d out=%d; it was given %d measurements and returned %d", st.In, st.Out, in, out)
		}
	}
	return nil
}

func processInPlace(s stage.InPlacer, ms []meter.Measurement) (got []meter.Measurement, panicked any, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = r
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), ProcessTimeout)
	defer cancel()
	got, err = s.ProcessInPlace(ctx, ms)
	return got, nil, err
}
