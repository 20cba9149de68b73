package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/option"
	"github.com/meterkit/meter/internal/statslog"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

// Option configures a Publisher. Options follow the package convention (see
// the root package's doc, Options): zero means the default for counts and
// durations, a negative one is an error from New naming the option, and an
// "off" that matters is a named constant (NoStats).
type Option func(*config) error

// setDefault is option.Set with the package's prefix on its error.
func setDefault[T int | time.Duration](dst *T, name string, v, def T) error {
	if err := option.Set(dst, name, v, def); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	return nil
}

type config struct {
	sinks       []namedSink
	workers     int
	writeLimit  time.Duration
	drain       time.Duration
	logger      *slog.Logger
	spoolDir    string
	spool       spoolConfig
	dedupWindow int
	dedupAge    time.Duration
	backoffMin  time.Duration
	backoffMax  time.Duration
	statsEvery  time.Duration
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
	DefaultBackoffMin   = 100 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
	// DefaultStatsInterval is how often the stats line is logged.
	DefaultStatsInterval = time.Minute
)

// NoStats, given to WithStatsInterval, turns the periodic stats line off.
const NoStats time.Duration = -1

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

// WithWorkers sets how many envelopes are worked on at once (0:
// DefaultWorkers, 4). Writes to one sink are never concurrent, whatever this
// number.
func WithWorkers(n int) Option {
	return func(c *config) error { return setDefault(&c.workers, "WithWorkers", n, DefaultWorkers) }
}

// WithWriteTimeout bounds one batch write to one sink (0:
// DefaultWriteTimeout, 30s). There is no "no limit": a store that never
// answers would hold its lane, and the agents, for ever.
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) error { return setDefault(&c.writeLimit, "WithWriteTimeout", d, DefaultWriteTimeout) }
}

// WithDrainTimeout bounds how long Run finishes envelopes in hand and
// drains the spool lanes after its context ends or Close is called (0:
// DefaultDrainTimeout, 10s).
func WithDrainTimeout(d time.Duration) Option {
	return func(c *config) error { return setDefault(&c.drain, "WithDrainTimeout", d, DefaultDrainTimeout) }
}

// WithLogger sets where the publisher logs (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) error { c.logger = l; return nil } }

// WithDedupWindow sets which accepted batches are remembered, by (tenant,
// agent, seq), so that one sent again is acknowledged again without reaching
// the sinks twice: an agent's last count seqs however old
// (DefaultDedupWindow when zero), and every seq accepted less than age ago
// however many (DefaultDedupAge when zero), up to 64 times count per agent.
// With WithSpool the window survives restarts.
//
// Batches come again when an acknowledgement was lost (the agent resends)
// and when a captured frame is replayed: with sealing (package
// transport/seal), a sealed envelope opens for as long as its sealing time
// is within the window of the receiver's clock either way, so age must be
// at least twice that window; the default covers seal's default window.
func WithDedupWindow(count int, age time.Duration) Option {
	return func(c *config) error {
		return errors.Join(setDefault(&c.dedupWindow, "WithDedupWindow count", count, DefaultDedupWindow),
			setDefault(&c.dedupAge, "WithDedupWindow age", age, DefaultDedupAge))
	}
}

// WithBackoff sets the delays between retries of a spooled batch whose sink
// failed: from min, doubling with jitter, up to max (0: DefaultBackoffMin,
// DefaultBackoffMax, 100ms to 30s).
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) error {
		if err := errors.Join(setDefault(&c.backoffMin, "WithBackoff min", min, DefaultBackoffMin),
			setDefault(&c.backoffMax, "WithBackoff max", max, DefaultBackoffMax)); err != nil {
			return err
		}
		if c.backoffMax < c.backoffMin {
			return fmt.Errorf("publisher: WithBackoff(%v, %v): max below min", c.backoffMin, c.backoffMax)
		}
		return nil
	}
}

// WithStatsInterval logs the counters every d at level Info (0:
// DefaultStatsInterval, one minute; NoStats: never).
func WithStatsInterval(d time.Duration) Option {
	return func(c *config) error {
		if d == NoStats {
			c.statsEvery = 0
			return nil
		}
		return setDefault(&c.statsEvery, "WithStatsInterval", d, DefaultStatsInterval)
	}
}

// Publisher receives envelopes from agents, validates their measurements,
// writes them to its sinks and acknowledges each envelope once every sink
// accepted it.
type Publisher struct {
	cfg   config
	recv  transport.Receiver
	log   *slog.Logger
	sinks []*guardedSink

	dd     *dedup
	spool  *spool
	doubts doubtSet

	running   atomic.Bool
	quit      chan struct{} // closed by Close: Run stops as if its ctx ended
	abort     chan struct{} // closed by Close when its ctx ends first: Run stops at once
	done      chan struct{} // closed when Run returns
	closeOnce sync.Once
	closeErr  error
	c         counters
}

// guardedSink serialises writes: a Sink is never written concurrently, and
// never after it was closed.
type guardedSink struct {
	name   string
	mu     sync.Mutex
	s      sink.Sink
	closed bool
	// The capabilities that change what reaches the store, asserted on s
	// itself and never below a wrapper (see sink.As): a wrapper that does
	// not offer them is written with Write and has no receipts.
	named    sink.NamedWriter
	receipts sink.ReceiptKeeper // only with named, which leaves the receipts
	flusher  sink.Flusher
}

// errSinkClosed is what a write to a sink the publisher closed returns.
var errSinkClosed = fmt.Errorf("publisher: sink already closed: %w", sink.ErrClosed)

func newGuardedSink(name string, s sink.Sink) *guardedSink {
	g := &guardedSink{name: name, s: s}
	g.named, _ = s.(sink.NamedWriter)
	if g.named != nil {
		g.receipts, _ = s.(sink.ReceiptKeeper)
	}
	g.flusher, _ = s.(sink.Flusher)
	return g
}

// New makes a publisher that receives from r and writes to the sinks given
// with WithSink (at least one). The publisher owns r and the sinks: Close
// closes them.
func New(r transport.Receiver, opts ...Option) (*Publisher, error) {
	if r == nil {
		return nil, errors.New("publisher: nil transport.Receiver")
	}
	c := config{workers: DefaultWorkers, writeLimit: DefaultWriteTimeout, drain: DefaultDrainTimeout,
		dedupWindow: DefaultDedupWindow, dedupAge: DefaultDedupAge, backoffMin: DefaultBackoffMin, backoffMax: DefaultBackoffMax,
		statsEvery: DefaultStatsInterval}
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
	p := &Publisher{cfg: c, recv: r, log: c.logger, dd: newDedup(c.dedupWindow, c.dedupAge),
		quit: make(chan struct{}), abort: make(chan struct{}), done: make(chan struct{})}
	names := make([]string, 0, len(c.sinks))
	for _, s := range c.sinks {
		p.sinks = append(p.sinks, newGuardedSink(s.name, s.s))
		names = append(names, s.name)
	}
	if c.spoolDir != "" {
		sp, err := openSpool(c.spoolDir, c.spool, names, p.dd)
		if err != nil {
			return nil, err
		}
		p.spool = sp
		for _, n := range names {
			if b, m := sp.pending(n); b > 0 {
				p.log.Info("spool holds batches from an earlier run; delivering them first", "sink", n, "batches", b, "measurements", m)
			}
		}
	}
	return p, nil
}

// Run works on envelopes until ctx ends or Close is called, then finishes
// the ones in hand and delivers what the spool lanes hold (within the drain
// timeout, and within Close's ctx) and returns nil. It returns an error only
// if the receiver fails for good. Run may be called once, and not after
// Close.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("publisher: Run called twice")
	}
	defer close(p.done)
	select {
	case <-p.quit:
		return errors.New("publisher: Run after Close")
	default:
	}
	ctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	// Work in hand is finished with a context that outlives ctx by the drain timeout.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() {
		time.AfterFunc(p.cfg.drain, cancelWork)
	})
	defer stop()
	// Close stops Run as the end of ctx does, and ends the drain when
	// Close's own ctx ends first.
	var watch sync.WaitGroup
	returned := make(chan struct{})
	defer watch.Wait()
	defer close(returned)
	watch.Go(func() {
		select {
		case <-p.quit:
			stopRun()
		case <-returned:
			return
		}
		select {
		case <-p.abort:
			cancelWork()
		case <-returned:
		}
	})

	var wg, lanes sync.WaitGroup
	laneCtx, stopLanes := context.WithCancel(workCtx)
	defer stopLanes()
	if p.spool != nil {
		for _, s := range p.sinks {
			l := p.spool.lanes[s.name]
			lanes.Go(func() { p.runLane(laneCtx, s, l) })
		}
	}
	if p.cfg.statsEvery > 0 {
		wg.Go(func() { p.logStats(ctx) })
	}
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
	// Agents are no longer served; let the lanes drain into the sinks until
	// they are empty or the drain timeout ends. What remains stays spooled.
	if p.spool != nil {
		for p.Stats().Pending > 0 && workCtx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		stopLanes()
		lanes.Wait()
		if n := p.Stats().Pending; n > 0 {
			p.log.Info("stopped; undelivered batches stay in the spool for the next start", "measurements", n)
		}
	}
	return <-errc
}

func (p *Publisher) logStats(ctx context.Context) {
	statslog.Every(ctx, p.log, "publisher stats", p.cfg.statsEvery, func() slog.LogValuer { return p.Stats() })
}

// runLane delivers one sink's spooled batches, oldest first, retrying a
// failing sink with exponential backoff and jitter. A batch in doubt (an
// earlier attempt may have reached the store) is first checked against the
// sink's receipts, when it keeps them, and only the rest is written. It
// returns when ctx ends.
func (p *Publisher) runLane(ctx context.Context, s *guardedSink, l *lane) {
	var dec transport.Decoder
	var env transport.Envelope
	backoff := p.cfg.backoffMin
	// retry waits before the next attempt; false means ctx ended.
	retry := func(what string, err error) bool {
		p.c.sinkErrors.Add(1)
		p.c.sinkRetries.Add(1)
		wait := backoff + time.Duration((rand.Float64()-0.5)*0.4*float64(backoff))
		p.log.Warn(what+"; will retry", "sink", s.name, "in", wait, "err", err)
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, p.cfg.backoffMax)
		return true
	}
	for {
		id, doubt, ok, err := p.spool.first(ctx, l, &dec, &env)
		if !ok {
			return
		}
		if err != nil {
			p.c.spoolDropped.Add(1)
			p.log.Error("spooled batch unreadable; dropped", "sink", s.name, "err", err)
			_ = p.spool.remove(l, id)
			continue
		}
		bid := sink.BatchID{Tenant: env.Tenant, Agent: env.Agent, Seq: env.Seq}
		from, err := p.reconcile(ctx, s, bid, doubt, len(env.Measurements))
		if err != nil {
			if ctx.Err() != nil || !retry("could not ask the sink what it holds of a batch in doubt", err) {
				return // the batch stays spooled, still in doubt
			}
			continue
		}
		rest := env.Measurements[from:]
		n := uint64(len(rest))
		werr := s.write(ctx, p.cfg.writeLimit, bid, from, rest)
		var partial *sink.PartialError
		switch {
		case werr == nil:
			p.c.written.Add(n)
		case errors.As(werr, &partial):
			p.c.sinkRejected.Add(uint64(len(partial.Rejected)))
			p.c.written.Add(n - uint64(len(partial.Rejected)))
			p.log.Warn("sink rejected some measurements", "sink", s.name, "agent", env.Agent, "seq", env.Seq,
				"rejected", len(partial.Rejected), "err", partial.Err)
		case sink.IsPermanent(werr):
			p.c.sinkErrors.Add(1)
			p.c.sinkDropped.Add(n)
			p.log.Error("sink refused a batch for good; dropped", "sink", s.name, "agent", env.Agent, "seq", env.Seq,
				"measurements", n, "err", werr)
		default:
			// The store may have taken some or all of it before the failure.
			p.spool.doubt(l, id)
			if ctx.Err() != nil || !retry("sink write failed", werr) {
				return // shutting down: the batch stays spooled
			}
			continue
		}
		backoff = p.cfg.backoffMin
		if err := p.spool.remove(l, id); err != nil {
			p.log.Error("could not forget a delivered batch; it may be delivered again", "sink", s.name, "err", err)
		}
	}
}

// reconcile returns the position from which a batch of n measurements is
// to be written to s: 0, unless the batch is in doubt and s's receipts say
// the store holds a part of it already.
func (p *Publisher) reconcile(ctx context.Context, s *guardedSink, id sink.BatchID, doubt bool, n int) (int, error) {
	if !doubt {
		return 0, nil
	}
	held, err := s.stored(ctx, p.cfg.writeLimit, id)
	switch {
	case errors.Is(err, sink.ErrNoReceipts):
		p.c.resentInDoubt.Add(uint64(n))
		return 0, nil
	case err != nil:
		return 0, err
	}
	held = min(held, n)
	p.c.reconciled.Add(uint64(held))
	if held > 0 {
		p.log.Info("the store already holds a batch in doubt, by its receipts; writing only the rest",
			"sink", s.name, "batch", id.String(), "held", held, "of", n)
	}
	return held, nil
}

// Close stops the publisher and releases what it owns, in order: when Run
// is running, Close makes it stop receiving, finish the envelopes in hand
// and drain the spool lanes, and waits for it to return; then it closes
// the receiver, every sink, and the spool. A sink is never written after
// it was closed. When ctx ends before Run returned, the writes in hand are
// cancelled (a sink must return when its ctx ends) and what was not
// delivered stays spooled, or is resent by its agent. Close is safe to call
// more than once, and concurrently: every call returns the first one's
// result.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		close(p.quit)
		var errs []error
		recvClosed := false
		if p.running.Load() {
			select {
			case <-p.done:
			case <-ctx.Done():
				close(p.abort)
				// Also unblocks a Receive that does not heed its ctx.
				errs = append(errs, p.recv.Close())
				recvClosed = true
				<-p.done
			}
		}
		if !recvClosed {
			errs = append(errs, p.recv.Close())
		}
		for _, s := range p.sinks {
			s.mu.Lock()
			if err := s.s.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("publisher: close sink %q: %w", s.name, err))
			}
			s.closed = true
			s.mu.Unlock()
		}
		if p.spool != nil {
			errs = append(errs, p.spool.close())
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

// worker owns a scratch batch so that validation allocates nothing.
type worker struct {
	p       *Publisher
	batch   []meter.Measurement
	evicted []uint64 // scratch for the de-duplication window
	log     envLogger
}

// envLogger logs with the envelope's tenant, agent and seq. It builds that
// logger on the first line logged, so an envelope that logs nothing costs
// no allocation.
type envLogger struct {
	base *slog.Logger
	env  *transport.Envelope
	l    *slog.Logger
}

func (e *envLogger) get() *slog.Logger {
	if e.l == nil {
		e.l = e.base.With("tenant", e.env.Tenant, "agent", e.env.Agent, "seq", e.env.Seq)
	}
	return e.l
}

func (e *envLogger) Warn(msg string, args ...any)  { e.get().Warn(msg, args...) }
func (e *envLogger) Error(msg string, args ...any) { e.get().Error(msg, args...) }

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
	log := &w.log
	*log = envLogger{base: p.log, env: env}
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

	key := sourceKey(env.Tenant, env.Agent)
	bid := sink.BatchID{Tenant: env.Tenant, Agent: env.Agent, Seq: env.Seq}
	switch p.dd.reserve(key, env.Seq) {
	case accepted: // accepted before; its ack was lost
		p.c.duplicates.Add(1)
		return transport.Ack{Status: transport.StatusOK, Message: "duplicate"}
	case busy: // the first copy may still fail: the agent asks again later
		p.c.retryEnvelopes.Add(1)
		return transport.Ack{Status: transport.StatusRetry, Message: "this batch is being handled; ask again"}
	}
	if p.spool != nil {
		drops, err := p.spool.append(env, w.batch, p.dd, key)
		if err != nil {
			p.dd.release(key, env.Seq)
			p.c.retryEnvelopes.Add(1)
			log.Error("could not spool a batch; the agent will resend it", "err", err)
			return transport.Ack{Status: transport.StatusRetry, Message: err.Error()}
		}
		for _, d := range drops {
			p.c.spoolDropped.Add(uint64(d.measurements))
			log.Error("spool lane full: dropped its oldest batches", "sink", d.lane, "batches", d.batches, "measurements", d.measurements)
		}
		p.c.spooled.Add(uint64(len(w.batch)))
	} else if err := p.write(ctx, log, bid, p.doubts.take(bid), w.batch); err != nil {
		p.dd.release(key, env.Seq)
		if !sink.IsPermanent(err) {
			// A sink may have taken the batch before failing: check its
			// receipts when the agent sends the batch again.
			p.doubts.add(bid)
		}
		if sink.IsPermanent(err) {
			p.c.rejectedEnvelopes.Add(1)
			return transport.Ack{Status: transport.StatusRejected, Message: err.Error()}
		}
		p.c.retryEnvelopes.Add(1)
		return transport.Ack{Status: transport.StatusRetry, Message: err.Error()}
	} else {
		w.evicted = p.dd.add(w.evicted[:0], key, env.Seq, p.dd.nowNanos())
		p.c.written.Add(uint64(len(w.batch)))
	}
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
// A batch in doubt is first checked against each sink's receipts.
func (p *Publisher) write(ctx context.Context, log *envLogger, id sink.BatchID, doubt bool, batch []meter.Measurement) error {
	var errs []error
	permanent := true
	for _, s := range p.sinks {
		from, err := p.reconcile(ctx, s, id, doubt, len(batch))
		if err == nil {
			err = s.write(ctx, p.cfg.writeLimit, id, from, batch[from:])
		}
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

// write writes batch, the measurements of batch id from position from on,
// to the sink: with WriteFrom when the sink takes named batches and id is
// known, with Write otherwise.
func (s *guardedSink) write(ctx context.Context, limit time.Duration, id sink.BatchID, from int, batch []meter.Measurement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	if s.closed {
		return errSinkClosed
	}
	var err error
	if s.named != nil && id.Agent != "" {
		err = s.named.WriteFrom(ctx, id, from, batch)
	} else {
		err = s.s.Write(ctx, batch)
	}
	if err != nil {
		return err
	}
	if s.flusher != nil {
		return s.flusher.Flush(ctx)
	}
	return nil
}

// stored asks the sink how far its store holds batch id, by its receipts;
// sink.ErrNoReceipts when it keeps none.
func (s *guardedSink) stored(ctx context.Context, limit time.Duration, id sink.BatchID) (int, error) {
	if s.receipts == nil || id.Agent == "" {
		return 0, sink.ErrNoReceipts
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errSinkClosed
	}
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	return s.receipts.Stored(ctx, id)
}

type counters struct {
	envelopes, received, invalid, written, acked atomic.Uint64
	rejectedEnvelopes, retryEnvelopes, ackErrors atomic.Uint64
	sinkErrors, sinkRejected                     atomic.Uint64
	duplicates, spooled, spoolDropped            atomic.Uint64
	sinkRetries, sinkDropped                     atomic.Uint64
	reconciled, resentInDoubt                    atomic.Uint64
}

// Stats counts what the publisher did since it was made. It is an
// [slog.LogValuer]: the periodic "publisher stats" line
// (WithStatsInterval) writes the fields with their log keys, shown in the
// struct tags.
type Stats struct {
	Envelopes         uint64 `log:"envelopes"`     // envelopes handed over by the receiver
	Received          uint64 `log:"received"`      // measurements in them
	Invalid           uint64 `log:"invalid"`       // measurements dropped by Validate
	Written           uint64 `log:"written"`       // measurements sinks accepted (summed over sinks when spooling)
	Acked             uint64 `log:"acked"`         // envelopes acknowledged OK
	RejectedEnvelopes uint64 `log:"rejected"`      // envelopes answered "rejected"
	RetryEnvelopes    uint64 `log:"retry"`         // envelopes answered "retry" (a sink failed)
	AckErrors         uint64 `log:"ack_errors"`    // acknowledgements that could not be sent
	SinkErrors        uint64 `log:"sink_errors"`   // failed sink writes
	SinkRejected      uint64 `log:"sink_rejected"` // measurements a sink refused in a partial failure
	Duplicates        uint64 `log:"duplicates"`    // envelopes acknowledged again without delivery (resent after a lost ack)
	Spooled           uint64 `log:"spooled"`       // measurements acknowledged once spooled (WithSpool)
	Pending           uint64 `log:"pending"`       // measurements in the spool not yet delivered, summed over sinks
	SpoolDropped      uint64 `log:"spool_dropped"` // measurements dropped because a spool lane was full
	SinkRetries       uint64 `log:"sink_retries"`  // failed writes of spooled batches, retried with backoff
	SinkDropped       uint64 `log:"sink_dropped"`  // spooled measurements a sink refused for good
	// Reconciled counts measurements of batches in doubt (an earlier attempt
	// may have reached the store) that a sink's receipts showed the store
	// held already, and that were therefore not written again.
	Reconciled uint64 `log:"reconciled"`
	// ResentInDoubt counts measurements of batches in doubt written again to
	// a sink that keeps no receipts: the store may now hold them twice.
	ResentInDoubt uint64 `log:"resent_in_doubt"`
}

// LogValue returns the counters as the "publisher stats" line writes them.
func (s Stats) LogValue() slog.Value { return statslog.Value(s) }

// Stats returns a snapshot of the publisher's counters.
func (p *Publisher) Stats() Stats {
	c := &p.c
	st := Stats{
		Envelopes: c.envelopes.Load(), Received: c.received.Load(), Invalid: c.invalid.Load(),
		Written: c.written.Load(), Acked: c.acked.Load(), RejectedEnvelopes: c.rejectedEnvelopes.Load(),
		RetryEnvelopes: c.retryEnvelopes.Load(), AckErrors: c.ackErrors.Load(),
		SinkErrors: c.sinkErrors.Load(), SinkRejected: c.sinkRejected.Load(),
		Duplicates: c.duplicates.Load(), Spooled: c.spooled.Load(), SpoolDropped: c.spoolDropped.Load(),
		SinkRetries: c.sinkRetries.Load(), SinkDropped: c.sinkDropped.Load(),
		Reconciled: c.reconciled.Load(), ResentInDoubt: c.resentInDoubt.Load(),
	}
	if p.spool != nil {
		for _, s := range p.sinks {
			_, m := p.spool.pending(s.name)
			st.Pending += uint64(m)
		}
	}
	return st
}

// doubtSet remembers, when there is no spool, the batches whose write
// failed after a sink may have taken them, so that the agent's resend is
// checked against the sinks' receipts. It is bounded: past maxDoubts the
// oldest are forgotten, and their resends written again in full.
type doubtSet struct {
	mu    sync.Mutex
	m     map[sink.BatchID]struct{}
	order []sink.BatchID
}

const maxDoubts = 4096

func (d *doubtSet) add(id sink.BatchID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[sink.BatchID]struct{}{}
	}
	if _, ok := d.m[id]; ok {
		return
	}
	if len(d.order) >= maxDoubts {
		delete(d.m, d.order[0])
		d.order = d.order[1:]
	}
	d.m[id] = struct{}{}
	d.order = append(d.order, id)
}

// take reports whether id is in doubt, and forgets it.
func (d *doubtSet) take(id sink.BatchID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.m[id]; !ok {
		return false
	}
	delete(d.m, id)
	if i := slices.Index(d.order, id); i >= 0 {
		d.order = slices.Delete(d.order, i, i+1)
	}
	return true
}
