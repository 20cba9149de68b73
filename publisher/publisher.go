package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

// Option configures a Publisher.
type Option func(*config) error

type config struct {
	sinks      []namedSink
	workers    int
	writeLimit time.Duration
	drain      time.Duration
	logger     *slog.Logger
}

type namedSink struct {
	name string
	s    sink.Sink
}

// Defaults, used where an option is not given.
const (
	DefaultWorkers      = 4
	DefaultWriteTimeout = 30 * time.Second
	DefaultDrainTimeout = 10 * time.Second
)

// WithSink adds a sink. Every accepted batch is written to every sink; the
// agent is acknowledged only when all of them accepted it. The name appears
// in logs and errors.
func WithSink(name string, s sink.Sink) Option {
	return func(c *config) error {
		if name == "" || s == nil {
			return fmt.Errorf("publisher: WithSink needs a name and a non-nil sink (name %q)", name)
		}
		for _, o := range c.sinks {
			if o.name == name {
				return fmt.Errorf("publisher: sink %q added twice", name)
			}
		}
		c.sinks = append(c.sinks, namedSink{name, s})
		return nil
	}
}

// WithWorkers sets how many envelopes are worked on at once (default 4).
// Writes to one sink are never concurrent, whatever this number.
func WithWorkers(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("publisher: WithWorkers(%d): must be positive", n)
		}
		c.workers = n
		return nil
	}
}

// WithWriteTimeout bounds one batch write to one sink (default 30s).
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) error { c.writeLimit = d; return nil }
}

// WithDrainTimeout bounds how long Run finishes envelopes in hand after its
// context ends (default 10s).
func WithDrainTimeout(d time.Duration) Option {
	return func(c *config) error { c.drain = d; return nil }
}

// WithLogger sets where the publisher logs (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) error { c.logger = l; return nil } }

// Publisher receives envelopes from agents, validates their measurements,
// writes them to its sinks and acknowledges each envelope once every sink
// accepted it.
type Publisher struct {
	cfg   config
	recv  transport.Receiver
	log   *slog.Logger
	sinks []*guardedSink

	running   atomic.Bool
	closeOnce sync.Once
	closeErr  error
	c         counters
}

// guardedSink serialises writes: a Sink is never written concurrently.
type guardedSink struct {
	name string
	mu   sync.Mutex
	s    sink.Sink
}

// New makes a publisher that receives from r and writes to the sinks given
// with WithSink (at least one). The publisher owns r and the sinks: Close
// closes them.
func New(r transport.Receiver, opts ...Option) (*Publisher, error) {
	if r == nil {
		return nil, errors.New("publisher: nil transport.Receiver")
	}
	c := config{workers: DefaultWorkers, writeLimit: DefaultWriteTimeout, drain: DefaultDrainTimeout}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	if len(c.sinks) == 0 {
		return nil, errors.New("publisher: no sink: add one with WithSink (sink.Discard to drop everything)")
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	p := &Publisher{cfg: c, recv: r, log: c.logger}
	for _, s := range c.sinks {
		p.sinks = append(p.sinks, &guardedSink{name: s.name, s: s.s})
	}
	return p, nil
}

// Run works on envelopes until ctx ends, then finishes the ones in hand
// (within the drain timeout) and returns nil. It returns an error only if
// the receiver fails for good. Run may be called once.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("publisher: Run called twice")
	}
	// Work in hand is finished with a context that outlives ctx by the drain timeout.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() {
		time.AfterFunc(p.cfg.drain, cancelWork)
	})
	defer stop()

	var wg sync.WaitGroup
	errc := make(chan error, p.cfg.workers)
	for range p.cfg.workers {
		wg.Go(func() {
			w := worker{p: p}
			if err := w.run(ctx, workCtx); err != nil {
				errc <- err
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// Close closes the receiver and every sink. It is safe to call more than once.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		errs := []error{p.recv.Close()}
		for _, s := range p.sinks {
			s.mu.Lock()
			if err := s.s.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("publisher: close sink %q: %w", s.name, err))
			}
			s.mu.Unlock()
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

// worker owns a scratch batch so that validation allocates nothing.
type worker struct {
	p     *Publisher
	batch []meter.Measurement
}

func (w *worker) run(ctx, workCtx context.Context) error {
	for {
		d, err := w.p.recv.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, transport.ErrClosed) {
				return nil
			}
			w.p.log.Error("receive failed", "err", err)
			return fmt.Errorf("publisher: receive: %w", err)
		}
		ack := w.handle(workCtx, d)
		if err := d.Ack(ack); err != nil {
			w.p.c.ackErrors.Add(1)
			w.p.log.Warn("could not send acknowledgement; the agent will resend",
				"agent", d.Envelope.Agent, "seq", d.Envelope.Seq, "err", err)
		}
	}
}

// handle validates and writes one envelope and returns the verdict for the agent.
func (w *worker) handle(ctx context.Context, d *transport.Delivery) transport.Ack {
	p, env := w.p, &d.Envelope
	p.c.envelopes.Add(1)
	p.c.received.Add(uint64(len(env.Measurements)))
	log := p.log.With("tenant", env.Tenant, "agent", env.Agent, "seq", env.Seq)
	if len(env.Sealed) > 0 {
		p.c.rejectedEnvelopes.Add(1)
		log.Warn("sealed envelope, but this publisher has no tenant keys; rejected")
		return transport.Ack{Status: transport.StatusRejected, Message: "sealed envelopes are not accepted here"}
	}

	w.batch = w.batch[:0]
	var firstErr error
	invalid := 0
	for i := range env.Measurements {
		m := &env.Measurements[i]
		if err := m.Validate(); err != nil {
			invalid++
			if firstErr == nil {
				firstErr = fmt.Errorf("measurement %d (%q): %w", i, m.Name, err)
			}
			continue
		}
		w.batch = append(w.batch, *m)
	}
	if invalid > 0 {
		p.c.invalid.Add(uint64(invalid))
		log.Warn("dropped invalid measurements; the rest of the batch goes on",
			"invalid", invalid, "of", len(env.Measurements), "first", firstErr)
	}
	if len(w.batch) == 0 {
		p.c.rejectedEnvelopes.Add(1)
		msg := "empty batch"
		if firstErr != nil {
			msg = "no valid measurement: " + firstErr.Error()
		}
		return transport.Ack{Status: transport.StatusRejected, Message: msg}
	}

	if err := p.write(ctx, log, w.batch); err != nil {
		if sink.IsPermanent(err) {
			p.c.rejectedEnvelopes.Add(1)
			return transport.Ack{Status: transport.StatusRejected, Message: err.Error()}
		}
		p.c.retryEnvelopes.Add(1)
		return transport.Ack{Status: transport.StatusRetry, Message: err.Error()}
	}
	p.c.written.Add(uint64(len(w.batch)))
	p.c.acked.Add(1)
	clear(w.batch) // no references into the delivery survive its ack
	if invalid > 0 {
		return transport.Ack{Status: transport.StatusOK, Message: fmt.Sprintf("%d invalid measurement(s) dropped: %v", invalid, firstErr)}
	}
	return transport.Ack{Status: transport.StatusOK}
}

// write writes batch to every sink. A retryable failure of any sink makes
// the whole envelope retryable; permanent failures of every failing sink
// make it permanent. Partially rejected measurements are counted and logged.
func (p *Publisher) write(ctx context.Context, log *slog.Logger, batch []meter.Measurement) error {
	var errs []error
	permanent := true
	for _, s := range p.sinks {
		err := s.write(ctx, p.cfg.writeLimit, batch)
		if err == nil {
			continue
		}
		var partial *sink.PartialError
		if errors.As(err, &partial) {
			p.c.sinkRejected.Add(uint64(len(partial.Rejected)))
			log.Warn("sink rejected some measurements", "sink", s.name, "rejected", len(partial.Rejected), "err", partial.Err)
			continue
		}
		p.c.sinkErrors.Add(1)
		log.Warn("sink write failed", "sink", s.name, "measurements", len(batch), "permanent", sink.IsPermanent(err), "err", err)
		errs = append(errs, fmt.Errorf("sink %q: %w", s.name, err))
		permanent = permanent && sink.IsPermanent(err)
	}
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	if permanent {
		return sink.Permanent(err)
	}
	return err
}

func (s *guardedSink) write(ctx context.Context, limit time.Duration, batch []meter.Measurement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	if err := s.s.Write(ctx, batch); err != nil {
		return err
	}
	if f, ok := s.s.(sink.Flusher); ok {
		return f.Flush(ctx)
	}
	return nil
}

type counters struct {
	envelopes, received, invalid, written, acked atomic.Uint64
	rejectedEnvelopes, retryEnvelopes, ackErrors atomic.Uint64
	sinkErrors, sinkRejected                     atomic.Uint64
}

// Stats counts what the publisher did since it was made.
type Stats struct {
	Envelopes         uint64 // envelopes handed over by the receiver
	Received          uint64 // measurements in them
	Invalid           uint64 // measurements dropped by Validate
	Written           uint64 // measurements every sink accepted
	Acked             uint64 // envelopes acknowledged OK
	RejectedEnvelopes uint64 // envelopes answered "rejected"
	RetryEnvelopes    uint64 // envelopes answered "retry" (a sink failed)
	AckErrors         uint64 // acknowledgements that could not be sent
	SinkErrors        uint64 // failed sink writes
	SinkRejected      uint64 // measurements a sink refused in a partial failure
}

// Stats returns a snapshot of the publisher's counters.
func (p *Publisher) Stats() Stats {
	c := &p.c
	return Stats{
		Envelopes: c.envelopes.Load(), Received: c.received.Load(), Invalid: c.invalid.Load(),
		Written: c.written.Load(), Acked: c.acked.Load(), RejectedEnvelopes: c.rejectedEnvelopes.Load(),
		RetryEnvelopes: c.retryEnvelopes.Load(), AckErrors: c.ackErrors.Load(),
		SinkErrors: c.sinkErrors.Load(), SinkRejected: c.sinkRejected.Load(),
	}
}
