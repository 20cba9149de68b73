package publisher_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/web"
	"github.com/meterkit/meter/transport/nanomsg"
)

// failBound bounds a wait that must end; it asserts no timing.
const failBound = 10 * time.Second

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Ready is open before Run, closes once Run receives (Serving is true by
// then), is the same channel on every call from any goroutine, and stays
// closed after Run returned.
func TestReadyClosesWhenRunServes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	nr, err := nanomsg.Listen("tcp://127.0.0.1:0", nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	p, err := publisher.New(nr, publisher.WithLogger(quiet), publisher.WithSink("discard", sink.NewDiscard()))
	require.NoError(t, err)
	ready := p.Ready()
	require.NotNil(t, ready)
	require.False(t, isClosed(ready), "closed before Run")
	require.False(t, p.Serving())

	// Many callers, before and while Run starts, get the one channel.
	var wg sync.WaitGroup
	got := make(chan (<-chan struct{}), 64)
	for range cap(got) {
		wg.Go(func() { got <- p.Ready() })
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	wg.Wait()
	close(got)
	for c := range got {
		require.True(t, c == ready, "Ready returned another channel")
	}

	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run returned before it served: %v", err)
	case <-time.After(failBound):
		t.Fatal("Ready not closed while Run serves")
	}
	require.True(t, p.Serving(), "Serving is true when Ready closes")
	require.True(t, p.Ready() == ready)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(failBound):
		t.Fatal("Run did not return")
	}
	require.False(t, p.Serving())
	require.True(t, isClosed(p.Ready()), "stays closed after Run")
	require.NoError(t, p.Close(context.Background()))
	require.True(t, isClosed(p.Ready()), "stays closed after Close")
}

// When Run cannot start (a sink's address is in use) it never serves and
// Ready is never closed, before or after Close.
func TestReadyNeverClosedWhenRunCannotStart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	w, err := web.New(web.WithAddr(taken.Addr().String()))
	require.NoError(t, err)
	_, p, cancel, done := tcpPublisher(t, publisher.WithSink("view", w))
	defer cancel()
	ready := p.Ready()
	select {
	case err := <-done:
		require.ErrorIs(t, err, publisher.ErrSinkStart)
		require.ErrorContains(t, err, "address already in use")
	case <-ready:
		t.Fatal("Ready closed although Run could not start")
	case <-time.After(failBound):
		t.Fatal("Run did not return")
	}
	require.False(t, isClosed(ready))
	require.False(t, isClosed(p.Ready()))
	require.NoError(t, p.Close(context.Background()))
	require.False(t, isClosed(p.Ready()), "Close does not close Ready")
}

// Run after Close returns an error without serving, and a second Run is
// refused: Ready stays open however Run is called.
func TestReadyNeverClosedWhenRunAfterClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	nr, err := nanomsg.Listen("tcp://127.0.0.1:0", nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	p, err := publisher.New(nr, publisher.WithLogger(quiet), publisher.WithSink("discard", sink.NewDiscard()))
	require.NoError(t, err)
	require.NoError(t, p.Close(context.Background()))
	require.Error(t, p.Run(context.Background()))
	require.Error(t, p.Run(context.Background()))
	require.False(t, isClosed(p.Ready()))
	require.False(t, p.Serving())
}
