package agent

import (
	"bytes"
	"fmt"

	"github.com/meterkit/meter/internal/spool"
	"github.com/meterkit/meter/stage"
)

// The stages' state in the spool file: meta/stage_state, the checkpoint of
// the stage chain (stage.Chain's format: each stateful stage's state under
// its name), written in the transaction of the batch that holds the last
// output it accounts for.
var keyStageState = []byte("stage_state")

// stageState is the agent's side of its stateful stages: the state to
// commit with the next batch stored, and the chain that checkpoints it.
//
// The state after a collection's staging is committed with the flush that
// holds that collection's last output, so that a crash loses the output not
// yet in the spool together with the state that made it: after a restart,
// the first collection of a series is staged against the last point that
// reached the spool (a rate covers the interval from there, counted once).
type stageState struct {
	cp      stage.Checkpointer
	r       stage.Restorer
	disk    *diskSpool // nil: the state lives in memory only
	pending []byte     // the state after the last collection staged
	dirty   bool       // pending is not yet in the spool
}

// newStageState finds the stateful stages of stages; it returns nil when
// none keeps state. The state is that of stage.Chain(stages...), keyed by
// the stages' names.
func newStageState(stages []stage.Stage) *stageState {
	if len(stages) == 0 {
		return nil
	}
	ch := stage.Chain(stages...)
	cp, ok := stage.As[stage.Checkpointer](ch)
	if !ok {
		return nil
	}
	r, _ := stage.As[stage.Restorer](ch)
	return &stageState{cp: cp, r: r}
}

// initState restores the stages' state from the spool, or says once that
// it lives in memory only. Called by New.
func (a *Agent) initState() {
	st := newStageState(a.cfg.stages)
	if st == nil {
		return
	}
	a.state = st
	ds, ok := a.q.(*diskSpool)
	if !ok {
		a.log.Info("stages keep state in memory only: without a spool (WithSpool) it is lost when the agent stops, and the first collections after a start give no rate or delta")
		return
	}
	st.disk = ds
	ds.state = st
	var saved []byte
	if err := ds.sp.View(func(tx spool.Tx) error { saved = tx.Get(bucketMeta, keyStageState); return nil }); err != nil {
		a.log.Error("could not read the stages' state from the spool; they start fresh", "err", err)
		return
	}
	if saved == nil || st.r == nil {
		return
	}
	if err := st.r.Restore(saved); err != nil {
		a.log.Error("could not restore the stages' state from the spool; they start fresh", "err", err)
		return
	}
	st.pending = saved
	a.log.Debug("restored the stages' state from the spool", "bytes", len(saved))
}

// staged records the stages' state after a collection whose output is all
// batched (in cur or in batches already stored). Called with a.mu held,
// after the output was batched: a flush during the batching committed the
// state before the collection, with that collection's first output.
func (a *Agent) stagedLocked() {
	st := a.state
	if st == nil || st.disk == nil {
		return
	}
	b, err := st.cp.Checkpoint()
	if err != nil {
		a.c.stageErrors.Add(1)
		a.log.Error("could not checkpoint the stages; the state in the spool stays as it was", "err", err)
		return
	}
	if st.dirty || !bytes.Equal(b, st.pending) {
		st.pending, st.dirty = b, true
	}
	if !st.dirty || len(a.cur) > 0 {
		return // goes with the flush of cur, which holds the collection's last output
	}
	// Every output is stored already (or there was none): commit the state
	// alone.
	if err := st.disk.sp.Update(func(tx spool.Tx) error { return st.put(tx) }); err != nil {
		a.log.Error("could not store the stages' state; it goes with the next batch", "err", err)
		return
	}
	st.dirty = false
}

// put writes the pending state in tx, if it is not stored yet.
func (st *stageState) put(tx spool.Tx) error {
	if !st.dirty {
		return nil
	}
	if err := tx.Put(bucketMeta, keyStageState, st.pending); err != nil {
		return fmt.Errorf("stage state: %w", err)
	}
	return nil
}
