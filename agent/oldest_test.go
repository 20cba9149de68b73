package agent_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/transport"
)

// OldestBatch is zero while nothing waits, the time the oldest batch was
// made while the publisher answers "retry" (the batch being resent counts,
// though it is no longer queued), and zero again once it is acknowledged;
// with a spool, a batch left by an earlier run counts from when the spool
// was opened.
func TestOldestBatch(t *testing.T) {
	for _, spool := range []bool{false, true} {
		name := "memory"
		if spool {
			name = "spool"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, r := transport.Pipe()
			defer s.Close()
			var accept atomic.Bool
			c := collector{verdict: func(*transport.Envelope) transport.Ack {
				if accept.Load() {
					return transport.Ack{Status: transport.StatusOK}
				}
				return transport.Ack{Status: transport.StatusRetry, Message: "store down"}
			}}
			defer c.run(t, r)()
			opts := []agent.Option{agent.WithLogger(quiet), agent.WithBatch(1, time.Millisecond),
				agent.WithBackoff(time.Millisecond, 5*time.Millisecond), agent.WithDrainTimeout(100 * time.Millisecond)}
			if spool {
				opts = append(opts, agent.WithSpool(dir))
			}
			a, err := agent.New(s, opts...)
			require.NoError(t, err)
			require.True(t, a.OldestBatch().IsZero())
			stop := start(t, a)
			before := time.Now()
			require.NoError(t, a.Add(gauge("o", 1)))
			require.Eventually(t, func() bool { return a.Stats().Resent >= 2 }, 5*time.Second, time.Millisecond)
			require.NoError(t, a.Add(gauge("o", 2)))
			old := a.OldestBatch()
			require.False(t, old.IsZero(), "a batch waits")
			require.False(t, old.Before(before), "%v before the batch was made (%v)", old, before)
			require.Less(t, time.Since(old), 5*time.Second)
			require.Eventually(t, func() bool { return a.Stats().Resent >= 4 }, 5*time.Second, time.Millisecond)
			require.Equal(t, old, a.OldestBatch(), "resending does not make the batch younger")

			if spool {
				// Stopped with both batches in the spool, another agent takes over.
				require.NoError(t, stop())
				require.NoError(t, a.Close(context.Background()))
				s2, r2 := transport.Pipe()
				defer s2.Close()
				defer c.run(t, r2)()
				opened := time.Now()
				a2, err := agent.New(s2, opts...)
				require.NoError(t, err)
				require.False(t, a2.OldestBatch().Before(opened), "an earlier run's batch counts from the opening")
				a, stop = a2, start(t, a2)
			}
			accept.Store(true)
			require.Eventually(t, func() bool { return a.OldestBatch().IsZero() }, 5*time.Second, time.Millisecond)
			require.Equal(t, 2, c.count("o"))
			require.NoError(t, stop())
			require.NoError(t, a.Close(context.Background()))
		})
	}
}
