package publisher

import "sync"

// readySignal is the channel Ready returns. Its zero value is ready for
// use: the channel is made on first use, by Ready or by fire, whichever
// comes first, and fire closes it once however often it is called.
type readySignal struct {
	made   sync.Once
	closed sync.Once
	ch     chan struct{}
}

func (r *readySignal) c() chan struct{} {
	r.made.Do(func() { r.ch = make(chan struct{}) })
	return r.ch
}

func (r *readySignal) fire() { r.closed.Do(func() { close(r.c()) }) }

// Ready returns a channel that is closed once Run receives envelopes: the
// moment Serving first reports true. A program that tells a supervisor it
// is ready (systemd's READY=1) waits on it instead of polling Serving.
//
// The channel is never closed if Run never gets that far: it is not called,
// it returns first because a sink cannot start (ErrSinkStart), or it is
// called after Close. Once closed it stays closed after Run returns, so
// Serving, not Ready, tells whether the publisher still receives. Every call
// returns the same channel; Ready may be called from any goroutine, before,
// during and after Run.
func (p *Publisher) Ready() <-chan struct{} { return p.ready.c() }

// startServing marks the moment Run's workers start to receive: Serving
// reports true, then Ready's channel is closed, so that whoever wakes on
// Ready sees Serving true.
func (p *Publisher) startServing() {
	p.serving.Store(true)
	p.ready.fire()
}
