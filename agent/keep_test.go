package agent_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/transport"
)

// A push source's batches are never dropped to make room, in memory or in a
// spool with a tiny bound, while a polled driver keeps filling the store:
// the polled batches are dropped instead, and the push source waits.
func TestPushBatchesAreKeptWhilePolledBatchesAreDropped(t *testing.T) {
	for _, store := range []string{"memory", "spool"} {
		t.Run(store, func(t *testing.T) {
			s, r := transport.Pipe()
			defer s.Close()
			var open atomic.Bool
			c := collector{verdict: func(*transport.Envelope) transport.Ack {
				if !open.Load() {
					return transport.Ack{Status: transport.StatusRetry, Message: "store down"}
				}
				return transport.Ack{Status: transport.StatusOK}
			}}
			defer c.run(t, r)()
			var ds [][]meter.Measurement
			for range 20 {
				ds = append(ds, gauges("push", 10))
			}
			p := newPushSource(ds...)
			var polls atomic.Int64
			poll := driver.Func(func(context.Context) ([]meter.Measurement, error) {
				polls.Add(1)
				return gauges("poll", 10), nil
			})
			bound := agent.WithQueueBytes(1500)
			if store == "spool" {
				bound = agent.WithSpool(t.TempDir(), agent.SpoolMaxBytes(1500))
			}
			a, err := agent.New(s, agent.WithLogger(quiet), agent.WithBatch(10, time.Millisecond), bound,
				agent.WithBackoff(time.Millisecond, 5*time.Millisecond), agent.WithJitter(0),
				agent.WithDriver("poll", poll, agent.Interval(2*time.Millisecond)), agent.WithDriver("bus", p))
			require.NoError(t, err)
			stop := start(t, a)
			// The polled driver goes on filling the store after the push
			// batches took their room: the store is full, and stays so.
			require.Eventually(t, func() bool { return a.Stats().Dropped >= 20 }, 5*time.Second, time.Millisecond,
				"polled batches are dropped while the publisher is down")
			select {
			case <-p.delivered:
				t.Fatal("every delivery was taken while the store was full")
			default:
			}
			taken := len(p.acks)
			if store == "spool" {
				require.Positive(t, taken, "what the spool took is durable and acknowledged")
			}
			open.Store(true)
			<-p.delivered
			for _, err := range acks(t, p, 20) {
				require.NoError(t, err, "no push delivery was dropped")
			}
			require.NoError(t, stop())
			require.Equal(t, 200, c.count("push"), "every push measurement reached the publisher, once")
			require.Positive(t, polls.Load())
		})
	}
}

// spoolOnly is a push source that requires a spool.
type spoolOnly struct{ *pushSource }

func (spoolOnly) RequiresSpool() bool { return true }

func TestNewRefusesAPushSourceThatRequiresASpoolWithoutOne(t *testing.T) {
	s, _ := transport.Pipe()
	defer s.Close()
	src := spoolOnly{newPushSource()}
	_, err := agent.New(s, agent.WithLogger(quiet), agent.WithDriver("bus", src))
	require.ErrorContains(t, err, `agent: driver "bus" pushes what its source forgets once acknowledged, and requires a spool`)
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithDriver("bus", src), agent.WithSpool(t.TempDir()))
	require.NoError(t, err)
	require.NoError(t, a.Close(context.Background()))
}
