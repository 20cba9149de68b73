package publisher_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/transport"
)

// closeCheck is a slow sink that counts every breach of the lifecycle
// contract: a Write after Close, and a Close while a Write is in progress.
type closeCheck struct {
	delay    time.Duration
	active   atomic.Int32
	closed   atomic.Bool
	breaches atomic.Int64
	written  atomic.Int64
	closes   atomic.Int32
}

func (c *closeCheck) Write(ctx context.Context, b []meter.Measurement) error {
	c.active.Add(1)
	defer c.active.Add(-1)
	if c.closed.Load() {
		c.breaches.Add(1)
		return errors.New("write after close")
	}
	t := time.NewTimer(c.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	if c.closed.Load() {
		c.breaches.Add(1) // closed while this write was in progress
	}
	c.written.Add(int64(len(b)))
	return nil
}

func (c *closeCheck) Close(context.Context) error {
	if c.active.Load() > 0 {
		c.breaches.Add(1)
	}
	c.closed.Store(true)
	c.closes.Add(1)
	return nil
}

// Close while Run is busy writing makes Run return first, and no sink is
// written after (or while) it is closed: with a spool whose lanes hold a
// backlog, without one while workers write, and when Close's ctx ends before
// the lanes are drained.
func TestCloseDuringRunStopsRunBeforeClosingSinks(t *testing.T) {
	for _, tc := range []struct {
		name       string
		spool      bool
		closeLimit time.Duration
	}{
		{"spool", true, 10 * time.Second},
		{"direct", false, 10 * time.Second},
		{"spool, Close's ctx ends first", true, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := &closeCheck{delay: 5 * time.Millisecond}
			snd, r := transport.Pipe()
			opts := []publisher.Option{publisher.WithLogger(quiet), publisher.WithSink("slow", cs),
				publisher.WithWorkers(4), publisher.WithStatsInterval(publisher.NoStats)}
			if tc.spool {
				opts = append(opts, publisher.WithSpool(t.TempDir(), publisher.SpoolNoSync()))
			}
			p, err := publisher.New(r, opts...)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()

			// Agents keep sending until the publisher goes away.
			var agents sync.WaitGroup
			var seq atomic.Uint64
			for range 4 {
				agents.Go(func() {
					for {
						if err := snd.Send(context.Background(), numbered(seq.Add(1), 10)); errors.Is(err, transport.ErrClosed) {
							return
						}
					}
				})
			}
			if tc.spool {
				require.Eventually(t, func() bool { return p.Stats().Pending >= 200 }, 5*time.Second, time.Millisecond,
					"a backlog in the lane")
			} else {
				require.Eventually(t, func() bool { return cs.written.Load() >= 50 }, 5*time.Second, time.Millisecond)
			}

			closeCtx, cancelClose := context.WithTimeout(context.Background(), tc.closeLimit)
			defer cancelClose()
			start := time.Now()
			require.NoError(t, p.Close(closeCtx))
			took := time.Since(start)
			// Close waits for Run to return; the goroutine that reports it
			// may still be on its way to the channel, hence a short grace.
			// (That nothing was written after the sink closed is checked
			// exactly below, by the sink itself.)
			select {
			case err := <-done:
				require.NoError(t, err, "Run returns nil when Close stops it")
			case <-time.After(time.Second):
				t.Fatal("Close returned before Run did")
			}
			agents.Wait()

			require.Zero(t, cs.breaches.Load(), "a sink was written after or while it was closed")
			require.Equal(t, int32(1), cs.closes.Load())
			require.NoError(t, p.Close(context.Background()), "Close twice")
			require.Equal(t, int32(1), cs.closes.Load(), "the sink is closed once")
			require.ErrorContains(t, p.Run(context.Background()), "Run called twice")

			st := p.Stats()
			if tc.spool && tc.closeLimit < time.Second {
				require.Less(t, took, time.Second, "Close's ctx bounds the drain")
				require.NotZero(t, st.Pending, "what was not delivered stays spooled")
			} else if tc.spool {
				require.Zero(t, st.Pending, "the lanes were drained before the sink was closed")
				require.Equal(t, int64(st.Spooled), cs.written.Load())
			} else {
				require.Equal(t, int64(st.Written), cs.written.Load(), "each acknowledged batch was written whole")
			}
		})
	}
}

// Close before Run: Run refuses to start, and nothing is written.
func TestRunAfterCloseRefuses(t *testing.T) {
	cs := &closeCheck{}
	_, r := transport.Pipe()
	p, err := publisher.New(r, publisher.WithLogger(quiet), publisher.WithSink("s", cs))
	require.NoError(t, err)
	require.NoError(t, p.Close(context.Background()))
	require.ErrorContains(t, p.Run(context.Background()), "after Close")
	require.Equal(t, int32(1), cs.closes.Load())
}
