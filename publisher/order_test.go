package publisher_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The order kept per source is bounded: a source silent too long, and past
// the bound the longest silent, is forgotten, counted, and deleted from the
// spool with the next batch committed, so that a restart does not bring it
// back: its next batch is in order, whatever its sequence. Real mangos
// sockets, a real spool.
func TestOrderOfSilentSourcesForgotten(t *testing.T) {
	dir := t.TempDir()
	clk := &manualClock{t: time.Now()}
	var rec sink.Recorder
	from := func(agent string, seq uint64) *transport.Envelope {
		env := envelope(seq, gauge("cpu.util", 5))
		env.Agent = agent
		return env
	}

	s, p, stop := stagedPublisher(t, true, publisher.WithSink("rec", &rec), publisher.WithSpool(dir, publisher.SpoolSync(publisher.SyncNever)),
		publisher.WithStage(levelsStage(t)))
	publisher.SetOrderBounds(p, time.Hour, 2, clk.now)
	ctx := context.Background()
	require.NoError(t, s.Send(ctx, from("a1", 10)))
	clk.add(2 * time.Hour)
	require.NoError(t, s.Send(ctx, from("a2", 100)))
	require.Equal(t, uint64(1), p.Stats().OrderForgotten, "a1, silent for 2 h")
	clk.add(time.Second)
	require.NoError(t, s.Send(ctx, from("a3", 100)))
	clk.add(time.Second)
	require.NoError(t, s.Send(ctx, from("a4", 100)))
	require.Equal(t, uint64(2), p.Stats().OrderForgotten, "a2, the longest silent of three, past the bound of two")
	require.Zero(t, p.Stats().OutOfOrder)
	stop()

	// Restarted with the usual bounds: a1 and a2 are not back from the
	// spool, a3 is.
	s, p, stop = stagedPublisher(t, true, publisher.WithSink("rec", &sink.Recorder{}), publisher.WithSpool(dir, publisher.SpoolSync(publisher.SyncNever)),
		publisher.WithStage(levelsStage(t)))
	defer stop()
	publisher.SetOrderBounds(p, 24*time.Hour, 100, clk.now)
	require.NoError(t, s.Send(ctx, from("a1", 3)))
	require.NoError(t, s.Send(ctx, from("a2", 50)))
	require.Zero(t, p.Stats().OutOfOrder, "forgotten: in order whatever their sequence")
	require.NoError(t, s.Send(ctx, from("a3", 50)))
	require.Equal(t, uint64(1), p.Stats().OutOfOrder, "a3 kept: 50 after 100 is out of order")
	require.Zero(t, p.Stats().OrderForgotten)
}
