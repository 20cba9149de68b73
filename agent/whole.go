package agent

import (
	"encoding/binary"
	"fmt"

	"github.com/meterkit/meter/internal/spool"
	"github.com/meterkit/meter/transport"
)

// A collection's staged output larger than one batch is cut into several
// batches. With stateful stages and a spool, those batches are held while
// the output is batched and stored at its end together with the stages'
// state, in one spool transaction (storeCutLocked): a crash leaves either
// all of them and the state after the collection, or none of them and the
// state before it, so no part of the output is staged twice.

// holdLocked keeps env, a batch flushed while a collection's cut output
// is being batched, for storeCutLocked; it reports false, and keeps
// nothing, outside that. Called by flushLocked with a.mu held.
func (a *Agent) holdLocked(env *transport.Envelope) bool {
	st := a.state
	if st == nil || !st.gather {
		return false
	}
	st.held = append(st.held, env)
	return true
}

// gatherLocked starts holding the batches of a collection's output that
// does not fit one batch, when there are stateful stages, a spool, and no
// push delivery (whose batches carry acks and keys, stored as before).
// The current batch is empty then (keepWholeLocked flushed it).
func (a *Agent) gatherLocked() {
	st := a.state
	if st == nil || st.disk == nil || a.pushing != nil || len(a.cur) > 0 {
		return
	}
	st.gather = true
}

// storeCutLocked flushes the last batch of a collection's cut output and
// stores it with the batches held before it and the stages' state, in one
// transaction. When that fails, none is stored (all are counted dropped)
// and the stages go back to the state in the spool, as after a batch
// dropped (stageState.lost). Called with a.mu held, after
// checkpointLocked.
func (a *Agent) storeCutLocked() {
	st := a.state
	if st == nil || !st.gather {
		return
	}
	a.flushLocked() // held too
	st.gather = false
	envs := st.held
	st.held = nil
	if len(envs) == 0 {
		return
	}
	n := 0
	for _, env := range envs {
		n += len(env.Measurements)
	}
	first, last := envs[0].Seq, envs[len(envs)-1].Seq
	batches, measurements, err := st.disk.pushAll(envs)
	if err != nil {
		a.c.dropped.Add(uint64(len(envs)))
		a.c.droppedMeasurements.Add(uint64(n))
		a.log.Error("could not store a collection's batches; dropped", "first", first, "last", last,
			"batches", len(envs), "measurements", n, "err", err)
		st.staging = false
		st.lost()
	}
	if batches > 0 {
		a.c.dropped.Add(uint64(batches))
		a.c.droppedMeasurements.Add(uint64(measurements))
		a.log.Error("queue full: dropped the oldest batches", "batches", batches, "measurements", measurements)
	}
}

// pushAll stores envs, consecutive batches of one collection's output,
// with the stages' state and the last sequence number, in one transaction,
// and recycles envs' memory.
func (s *diskSpool) pushAll(envs []*transport.Envelope) (droppedBatches, droppedMeasurements int, err error) {
	seq := envs[len(envs)-1].Seq
	drops, err := s.sp.AppendAll(envs, func(tx spool.Tx) error {
		if s.state != nil {
			if err := s.state.put(tx); err != nil {
				return err
			}
		}
		return tx.Put(bucketMeta, keyLastSeq, binary.BigEndian.AppendUint64(nil, seq))
	})
	for _, env := range envs {
		s.recycle(env)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("agent: %w", err)
	}
	if s.state != nil {
		s.state.stored()
	}
	for _, d := range drops {
		droppedBatches += d.Batches
		droppedMeasurements += d.Measurements
	}
	return droppedBatches, droppedMeasurements, nil
}
