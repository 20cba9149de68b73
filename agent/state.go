package agent

import (
	"bytes"
	"fmt"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/spool"
	"github.com/meterkit/meter/internal/stagestate"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/transport"
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
// holds that collection's last output (the whole output; when it is larger
// than a batch, all its batches are stored with the state in one
// transaction, whole.go), so that a crash loses the output not
// yet in the spool together with the state that made it: after a restart,
// the first collection of a series is staged against the last point that
// reached the spool (a rate covers the interval from there, counted once).
type stageState struct {
	cp      stage.Checkpointer
	r       stage.Restorer
	disk    *diskSpool // nil: the state lives in memory only
	pending []byte     // the state after the last collection staged
	dirty   bool       // pending is not yet in the spool
	// committed is the state in the spool (at start, the state restored or
	// the fresh one): what a batch that could not be stored goes back to.
	committed []byte
	// staging: between a collection's Process and the end of its
	// batching, when the stages' state is ahead of what is batched.
	staging bool
	// gather: a collection's output larger than a batch is being batched;
	// its batches are held, to be stored with the state in one
	// transaction (whole.go).
	gather bool
	held   []*transport.Envelope
}

// newStageState finds the stateful stages of stages; it returns nil when
// none keeps state. The state is that of stage.Chain(stages...), keyed by
// the stages' names, or that of the one stage given when it has no name
// (the chain of a stage file, itself keyed by the names in the file).
func newStageState(stages []stage.Stage) *stageState {
	if len(stages) == 0 {
		return nil
	}
	ch := stages[0]
	if len(stages) > 1 {
		ch = stage.Chain(stages...)
	}
	ch = stagestate.Keyed(ch)
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
	if saved != nil && st.r != nil {
		if err := st.r.Restore(saved); err != nil {
			a.log.Error("could not restore the stages' state from the spool; they start fresh", "err", err)
		} else {
			a.log.Debug("restored the stages' state from the spool", "bytes", len(saved))
		}
	}
	b, err := st.cp.Checkpoint()
	if err != nil {
		a.log.Error("could not checkpoint the stages", "err", err)
		return
	}
	st.pending, st.committed = b, b
}

// restateLocked points the state at the stages Reconfigure put in place
// (their state already carried over from the old ones by name). The new
// stages' state goes into the spool with the next batch stored, and is
// what a batch that cannot be stored goes back to. Called with a.mu held.
func (a *Agent) restateLocked(stages []stage.Stage) {
	had := a.state != nil
	st := newStageState(stages)
	ds, _ := a.q.(*diskSpool)
	a.state = st
	if ds != nil {
		ds.state = st
	}
	if st == nil {
		return
	}
	if ds == nil {
		if !had {
			a.log.Info("stages keep state in memory only: without a spool (WithSpool) it is lost when the agent stops")
		}
		return
	}
	st.disk = ds
	b, err := st.cp.Checkpoint()
	if err != nil {
		a.c.stageErrors.Add(1)
		a.log.Error("could not checkpoint the new stages; their state goes to the spool after the next collection", "err", err)
		return
	}
	st.pending, st.committed, st.dirty = b, b, true
}

// checkpointLocked takes the stages' state after a collection, to commit
// with the next batch stored: the one that holds the collection's last
// output. Called with a.mu held, after Process, before the output is
// batched when keepWholeLocked said it goes into one batch, after it
// otherwise.
func (a *Agent) checkpointLocked() {
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
}

// commitIdleLocked commits the state alone when every output is stored
// already (or there was none), as for a collection staged to nothing.
func (a *Agent) commitIdleLocked() {
	st := a.state
	if st == nil {
		return
	}
	st.staging = false
	if st.disk == nil || !st.dirty || len(a.cur) > 0 {
		return
	}
	if err := st.disk.sp.Update(func(tx spool.Tx) error { return st.put(tx) }); err != nil {
		a.log.Error("could not store the stages' state; it goes with the next batch", "err", err)
		return
	}
	st.stored()
}

// stored records that the pending state is in the spool.
func (st *stageState) stored() {
	if st.dirty {
		st.committed = st.pending
	}
	st.dirty = false
}

// lost puts the stages back to the state in the spool after a batch could
// not be stored (it is dropped): the next collection is staged against the
// last point stored, so a rate or delta covers the lost interval too. Not
// while a collection is being batched, whose output would then go with a
// state from before it: that rare case keeps the state, and the lost
// batch's intervals are lost with it.
func (st *stageState) lost() {
	if st.staging || st.r == nil || st.committed == nil {
		return
	}
	if err := st.r.Restore(st.committed); err != nil {
		return // the state stays ahead: the dropped batch's intervals are lost
	}
	st.pending, st.dirty = st.committed, false
}

// keepWholeLocked flushes the current batch before a collection's staged
// output out when out would not fit in it, and reports whether out then
// goes into one batch: the state committed with that batch accounts for
// exactly the output stored. Output larger than a batch is cut into
// batches that are held and stored together with the state in one
// transaction (gatherLocked, storeCutLocked; whole.go), except for a push
// delivery's, whose batches are stored one at a time and the state with
// the last: a crash between them stages the first part again. It does
// nothing without stateful stages and a spool.
func (a *Agent) keepWholeLocked(out []meter.Measurement) bool {
	if a.state == nil || a.state.disk == nil {
		return true
	}
	a.state.staging = true
	if len(out) == 0 {
		return true
	}
	size := 0
	for i := range out {
		size += transport.MeasurementSize(&out[i], a.cfg.host)
	}
	if len(a.cur) > 0 && (len(a.cur)+len(out) > a.cfg.batchSize || a.curBytes+size > a.cut) {
		a.flushLocked()
	}
	return len(out) <= a.cfg.batchSize && size <= a.cut // what batchLocked puts in one batch
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
