package agent_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/transport"
)

func TestSpoolKeepsBatchesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	for _, policy := range []agent.SyncPolicy{agent.SyncAlways, agent.SyncEvery(10 * time.Millisecond), agent.SyncNever} {
		// First run: the publisher answers "retry" to everything, as when its store is down.
		s, r := transport.Pipe()
		down := collector{verdict: func(*transport.Envelope) transport.Ack {
			return transport.Ack{Status: transport.StatusRetry, Message: "store down"}
		}}
		stopDown := down.run(t, r)
		a, err := agent.New(s, agent.WithLogger(quiet), agent.WithID("spooler"), agent.WithBatch(10, time.Hour),
			agent.WithSpool(dir, agent.SpoolSync(policy)), agent.WithBackoff(time.Millisecond, 2*time.Millisecond),
			agent.WithDrainTimeout(30*time.Millisecond))
		require.NoError(t, err)
		stop := start(t, a)
		for i := range 25 {
			require.NoError(t, a.Add(gauge("spooled", float64(i))))
		}
		require.NoError(t, stop(), "unacknowledged batches are kept, not lost")
		require.Zero(t, a.Stats().Unsent)
		stopDown()
		s.Close()

		// Second run: the publisher accepts. Everything arrives, in order, and numbering goes on.
		s, r = transport.Pipe()
		var up collector
		stopUp := up.run(t, r)
		a, err = agent.New(s, agent.WithLogger(quiet), agent.WithID("spooler"), agent.WithBatch(10, time.Hour),
			agent.WithSpool(dir, agent.SpoolSync(policy)))
		require.NoError(t, err)
		require.Equal(t, 3, a.Stats().Queued, "three batches waited in the spool")
		stop = start(t, a)
		require.NoError(t, a.Add(gauge("fresh", 1)))
		require.NoError(t, stop())
		stopUp()
		s.Close()

		got := up.measurements()
		require.Len(t, got, 26, "policy %v", policy)
		for i := range 25 {
			require.Equal(t, float64(i), got[i].Value, "spooled batches resent in order")
		}
		up.mu.Lock()
		seqs := []uint64{}
		for _, e := range up.envs {
			seqs = append(seqs, e.Seq)
		}
		up.mu.Unlock()
		require.Len(t, seqs, 4)
		for i := 1; i < len(seqs); i++ {
			require.Greater(t, seqs[i], seqs[i-1], "sequence numbers go on across restarts: %v", seqs)
		}
		require.Zero(t, a.Stats().Queued)
	}
}

func TestSpoolBoundDropsOldest(t *testing.T) {
	s, _ := transport.Pipe()
	defer s.Close()
	dir := t.TempDir()
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(1, time.Hour),
		agent.WithSpool(dir, agent.SpoolMaxBytes(300)), agent.WithDrainTimeout(20*time.Millisecond))
	require.NoError(t, err)
	for i := range 20 {
		require.NoError(t, a.Add(gauge("bounded", float64(i))))
	}
	st := a.Stats()
	require.Greater(t, st.Dropped, uint64(0))
	require.Equal(t, st.Dropped, st.DroppedMeasurements)
	require.Equal(t, 20, int(st.Dropped)+st.Queued, "every batch is either spooled or counted as dropped")

	// A second agent on the same spool is refused while the first holds it.
	_, err = agent.New(s, agent.WithLogger(quiet), agent.WithSpool(dir))
	require.ErrorContains(t, err, "in use by another process")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, a.Run(ctx)) // releases the spool; the batches stay for next time
	require.NoError(t, a.Close(context.Background()), "Close after Run closes the sender")
	a2, err := agent.New(s, agent.WithLogger(quiet), agent.WithSpool(dir), agent.WithDrainTimeout(20*time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, st.Queued, a2.Stats().Queued)
	// An agent that never runs releases the spool with Close.
	require.NoError(t, a2.Close(context.Background()))
	require.NoError(t, a2.Close(context.Background()), "Close twice")
	require.ErrorIs(t, a2.Add(gauge("late", 1)), agent.ErrStopped)
	require.ErrorIs(t, a2.Run(ctx), agent.ErrStopped)
	a3, err := agent.New(s, agent.WithLogger(quiet), agent.WithSpool(dir))
	require.NoError(t, err, "the spool is free again")
	require.Equal(t, st.Queued, a3.Stats().Queued)
	require.NoError(t, a3.Close(context.Background()))
}

func TestDamagedSpoolIsAClearError(t *testing.T) {
	dir := t.TempDir()
	s, _ := transport.Pipe()
	defer s.Close()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "agent.spool"), bytes.Repeat([]byte("not a bbolt file "), 1024), 0o600))
	_, err := agent.New(s, agent.WithLogger(quiet), agent.WithSpool(dir))
	require.Error(t, err)
	require.Contains(t, err.Error(), "agent.spool")
}
