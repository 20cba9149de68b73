package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/internal/statslog"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/transport"
)

// ErrStopped is returned by Add after Run has returned, and by a second Run.
var ErrStopped = errors.New("agent: stopped")

// Agent runs drivers on their schedules, batches what they measure together
// with what the program adds itself, and sends the batches through a
// transport.Sender, resending each until the publisher accepts it.
type Agent struct {
	cfg    config
	sender transport.Sender
	raw    transport.RawSender     // s as a RawSender, used by the disk spool
	peer   transport.PeerVersioner // the sender's, nil when it has none (version.go)
	log    *slog.Logger
	q      store

	mu       sync.Mutex // guards cur, curSince, curBytes, budget, seq, stopped, the stages and their buffers
	cur      []meter.Measurement
	curBytes int // the encoded size of cur's measurements (transport.MeasurementSizeFor)
	// curVersion is the envelope version cur is sized and written in: the
	// newest the publisher reads (version.go) when cur was opened.
	curVersion uint32
	// budget is the room for measurements in one frame: the frame limit
	// (the sender's, or the publisher's when it said it is smaller) less
	// the envelope's header.
	budget   int
	cut      int                 // the room batches are cut to: budget, or less (cutRoom, prefer.go)
	prefer   int                 // the sender's preferred frame size (transport.FramePreferrer), 0 for none
	limit    int                 // the frame limit budget comes from
	header   int                 // the encoded size of an envelope without measurements
	stages   stage.Stage         // nil without WithStage
	valid    []meter.Measurement // a collection's valid measurements, the stages' input
	staged   []meter.Measurement // the stages' output
	state    *stageState         // nil when no stage keeps state (state.go)
	curSince time.Time
	seq      uint64
	stopped  bool
	// The acks of push deliveries (push.go): those with measurements in
	// cur, the delivery being added, and whether it is attached to cur.
	curAcks      []*pushAck
	pushing      *pushAck
	pushingInCur bool

	acksMu   sync.Mutex            // guards inflight
	inflight map[uint64][]*pushAck // without a spool: the acks of queued batches, by Seq

	running   atomic.Bool
	aged      chan struct{} // signalled when a batch is opened: wakes the age flusher (schedule.go)
	stop      chan struct{} // closed by Close: Run stops as if its context ended
	runDone   chan struct{} // closed when Run returns
	closeOnce sync.Once
	closeErr  error
	bufs      sync.Pool // of *[]meter.Measurement
	c         counters

	senderLimit     int                   // the sender's frame limit (FrameLimiter, or DefaultMaxFrameSize)
	refused         atomic.Pointer[error] // the publisher's last refusal of this agent; nil once it accepts again
	splitLogged     atomic.Bool           // the split without a known publisher limit was logged
	downgradeLogged atomic.Bool           // a batch sent again as envelope version 1 was logged (version.go)
	rl              reloadState           // Reconfigure (reload.go)
}

// DefaultMaxFrameSize is the frame limit the agent cuts batches to when
// its sender does not report one (transport.FrameLimiter): 4 MiB, the
// transports' default.
const DefaultMaxFrameSize = 4 << 20

// New makes an agent that sends through s. The agent owns s from then on:
// Close closes it (and New closes nothing if it fails; s is still the
// caller's).
//
// Batches are cut so that each encoded envelope fits the frame limit s
// reports (transport.FrameLimiter, asserted on s itself, since a wrapper
// that changes the frame reports its own), DefaultMaxFrameSize when it
// reports none. New fails when WithTenant names another tenant than the one
// s seals for (a capability Tenant() string found with transport.As, as
// the sealing Sender of package transport/seal offers): every batch would
// be refused.
func New(s transport.Sender, opts ...Option) (*Agent, error) {
	if s == nil {
		return nil, errors.New("agent: nil transport.Sender")
	}
	c := config{
		batchSize:    DefaultBatchSize,
		batchAge:     DefaultBatchAge,
		queueBatches: DefaultQueueBatches,
		queueBytes:   DefaultQueueBytes,
		inFlight:     1,
		jitter:       DefaultJitter,
		sendTimeout:  DefaultSendTimeout,
		backoffMin:   DefaultBackoffMin,
		backoffMax:   DefaultBackoffMax,
		drain:        DefaultDrainTimeout,
		statsEvery:   DefaultStatsInterval,
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	if err := checkSpool(&c); err != nil {
		return nil, err
	}
	if c.host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("agent: no host given and os.Hostname failed: %w", err)
		}
		c.host = h
	}
	if c.id == "" {
		c.id = c.host
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if tn, ok := transport.As[interface{ Tenant() string }](s); ok && c.tenant != "" && tn.Tenant() != c.tenant {
		return nil, fmt.Errorf("agent: WithTenant(%q), but the sender seals for tenant %q: every batch would be refused", c.tenant, tn.Tenant())
	}
	limit := DefaultMaxFrameSize
	if fl, ok := s.(transport.FrameLimiter); ok {
		if n := fl.MaxFrameSize(); n > 0 {
			limit = n
		}
	}
	// The header at its largest: the longest Seq, a SentAt.
	head, err := transport.AppendEnvelope(nil, &transport.Envelope{Tenant: c.tenant, Agent: c.id,
		Seq: math.MaxUint64, SentAt: time.Now(), Host: c.host})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if limit <= len(head) {
		return nil, fmt.Errorf("agent: the sender's frame limit of %d bytes leaves no room for measurements (the envelope's header takes %d)", limit, len(head))
	}
	a := &Agent{
		senderLimit: limit,
		limit:       limit,
		header:      len(head),
		budget:      limit - len(head),
		cut:         cutRoom(limit, preferredFrame(s), len(head)),
		prefer:      preferredFrame(s),
		cfg:         c,
		stages:      chain(c.stages),
		sender:      s,
		curVersion:  transport.Version,
		log:         c.logger.With("agent", c.id),
		aged:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		runDone:     make(chan struct{}),
	}
	a.rl.stages.Store(&stageBox{a.stages}) // for Stats (stagestats.go)
	recycle := func(env *transport.Envelope) { a.putBuf(env.Measurements) }
	// Batches go to the wire as they are stored when the sender can take
	// them so (transport.RawSender): no decoding and encoding again.
	a.raw, _ = transport.AsRawSender(s)
	a.peer, _ = transport.As[transport.PeerVersioner](s)
	if c.spoolDir != "" {
		sp, err := openSpool(c.spoolDir, c.spool, recycle, a.raw != nil)
		if err != nil {
			return nil, err
		}
		sp.onBad = func(err error) {
			a.c.dropped.Add(1)
			a.log.Error("spooled batch unreadable; dropped", "err", err)
		}
		a.q = sp
		if n := sp.pending(); n > 0 {
			a.log.Info("spool holds unacknowledged batches from an earlier run; resending them first",
				"batches", n, "measurements", sp.pendingMeasurements(), "spool", sp.path)
		}
	} else {
		mq := newMemQueue(c.queueBatches, c.queueBytes, a.raw != nil, recycle)
		mq.onDrop = func(seq uint64) { a.settleSeq(seq, notDelivered("dropped from the full queue")) }
		mq.onBad = func(err error, n int) {
			a.c.failed.Add(1)
			a.c.failedMeasurements.Add(uint64(n))
			a.log.Error("queued batch unreadable; dropped", "err", err)
		}
		a.q = mq
	}
	// Numbering never goes back across restarts, spool or not: it goes on
	// from the spool, or from the clock in microseconds if that is larger
	// (an agent makes far fewer than a million batches a second).
	a.seq = max(a.q.lastSeq(), uint64(time.Now().UnixMicro()))
	a.cur = a.getBuf()
	a.initState()
	return a, nil
}

// Add queues measurements that the program measured itself, for services
// that push rather than being polled. Measurements without a Host or Time
// get the agent's host and the current time. Invalid measurements are
// dropped and counted, and Add returns their errors joined; the valid ones
// are queued all the same. Add may be called concurrently and before Run; it
// copies the measurements (not the label slices, which must not be modified
// afterwards).
func (a *Agent) Add(ms ...meter.Measurement) error {
	return a.add("", ms)
}

func (a *Agent) add(source string, ms []meter.Measurement) error { return a.addAck(source, ms, nil) }

// addAck adds ms, attaching the push delivery's ack pa (nil for a polled
// collection or Add) to each batch that takes some of them.
func (a *Agent) addAck(source string, ms []meter.Measurement, pa *pushAck) error {
	now := time.Now()
	var errs []error
	var big oversized
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return ErrStopped
	}
	a.pushing, a.pushingInCur = pa, false
	for i := range ms {
		m := ms[i]
		if m.Host == "" {
			m.Host = a.cfg.host
		}
		if m.Time.IsZero() {
			m.Time = now
		}
		if err := m.Validate(); err != nil {
			if len(errs) < 8 {
				errs = append(errs, fmt.Errorf("measurement %d (%q): %w", i, m.Name, err))
			}
			a.c.invalid.Add(1)
			continue
		}
		if a.stages != nil {
			a.valid = append(a.valid, m)
			continue
		}
		a.batchLocked(m, now, &big)
	}
	if a.stages != nil && len(a.valid) > 0 {
		a.stageLocked(source, ms, now, &big)
	}
	budget := a.budget
	if a.pushing != nil {
		a.pushing, a.pushingInCur = nil, false
		if len(a.cur) >= a.cfg.batchSize {
			a.flushLocked()
		}
	}
	a.mu.Unlock()
	a.c.accepted.Add(uint64(len(ms)))
	if big.n > 0 {
		a.c.oversized.Add(uint64(big.n))
		if source == "" {
			source = "(Add)"
		}
		a.log.Error("measurements too large for any frame; dropped", "driver", source, "measurements", big.n,
			"first", big.name, "size", big.size, "room", budget)
	}
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	if source != "" {
		a.log.Warn("driver returned invalid measurements; dropped", "driver", source, "err", err)
	}
	return err
}

// oversized tells a collection's measurements too large for any frame.
type oversized struct {
	n    int
	name string // the first one's
	size int    // its encoded size
}

// add counts m, whose encoded size is size.
func (big *oversized) add(m *meter.Measurement, size int) {
	if big.n == 0 {
		big.name, big.size = m.Name, size
	}
	big.n++
}

// batchLocked appends m to the current batch, and sends the batch on when
// it is full: bytes first (the encoded envelope must fit a frame), then
// count. A measurement too large for any frame is dropped into big.
func (a *Agent) batchLocked(m meter.Measurement, now time.Time, big *oversized) {
	if len(a.cur) == 0 {
		a.curVersion = a.wireVersion()
	}
	size := transport.MeasurementSizeFor(&m, a.cfg.host, a.curVersion)
	if size > a.budget {
		big.add(&m, size)
		return
	}
	if a.curBytes+size > a.cut {
		a.flushLocked()
		if v := a.wireVersion(); v != a.curVersion { // the next batch's
			a.curVersion = v
			if size = transport.MeasurementSizeFor(&m, a.cfg.host, v); size > a.budget {
				big.add(&m, size)
				return
			}
		}
	}
	if len(a.cur) == 0 {
		a.curSince = now
		signal(a.aged)
	}
	a.cur = append(a.cur, m)
	a.curBytes += size
	a.attachLocked()
	// A push delivery's batch is cut by count only once the delivery is
	// all in (addAck), so that its key goes with its last measurements.
	if len(a.cur) >= a.cfg.batchSize && a.pushing == nil {
		a.flushLocked()
	}
}

// stageLocked runs a collection's valid measurements through the stages
// and batches their output. A broken stage (an error) is logged and
// counted, and the collection goes on unstaged: nothing accepted is lost.
// Stages that work in place (a chain always does) work in a.valid itself;
// after an error there, a.valid is made again from ms, the collection.
func (a *Agent) stageLocked(source string, ms []meter.Measurement, now time.Time, big *oversized) {
	var out []meter.Measurement
	var err error
	ip, inPlace := a.stages.(stage.InPlacer)
	if inPlace {
		out, err = ip.ProcessInPlace(context.Background(), a.valid)
	} else {
		out, err = a.stages.Process(context.Background(), a.valid, a.staged[:0])
	}
	in := len(a.valid)
	if err != nil {
		a.c.stageErrors.Add(1)
		a.log.Error("a stage failed; the collection goes on unstaged", "driver", source, "err", err)
		if inPlace {
			clear(a.valid)
			a.valid = a.validAgain(a.valid[:0], ms, now)
			out = a.valid
		} else {
			out = append(out[:0], a.valid...)
		}
	}
	a.c.staged.Add(uint64(in))
	a.c.stagedOut.Add(uint64(len(out)))
	whole := a.keepWholeLocked(out) // state.go
	if whole {
		a.checkpointLocked() // before a flush that takes the last of out
	} else {
		a.gatherLocked() // whole.go: its batches go into the spool together
	}
	for i := range out {
		a.batchLocked(out[i], now, big)
	}
	if !whole {
		a.checkpointLocked()
		a.storeCutLocked()
	}
	// Keep the buffers, not what they point to.
	clear(out)
	if inPlace {
		a.valid = out[:0] // it may have grown
	} else {
		clear(a.valid)
		a.valid, a.staged = a.valid[:0], out[:0]
	}
	a.commitIdleLocked()
}

// validAgain appends the valid measurements of ms to dst, completed as
// addAck completes them, without counting or logging the others again.
func (a *Agent) validAgain(dst, ms []meter.Measurement, now time.Time) []meter.Measurement {
	for _, m := range ms {
		if m.Host == "" {
			m.Host = a.cfg.host
		}
		if m.Time.IsZero() {
			m.Time = now
		}
		if m.Validate() == nil {
			dst = append(dst, m)
		}
	}
	return dst
}

// chain makes one stage of the stages given to WithStage.
func chain(stages []stage.Stage) stage.Stage {
	switch len(stages) {
	case 0:
		return nil
	case 1:
		return stages[0]
	}
	return stage.Chain(stages...)
}

// flushLocked turns the current batch into an envelope and queues it.
func (a *Agent) flushLocked() {
	if len(a.cur) == 0 {
		return
	}
	a.seq++
	env := &transport.Envelope{
		Version:      a.curVersion,
		Tenant:       a.cfg.tenant,
		Agent:        a.cfg.id,
		Seq:          a.seq,
		SentAt:       time.Now(),
		Host:         a.cfg.host,
		Measurements: a.cur,
	}
	size := a.curBytes
	a.curBytes = 0
	a.c.batches.Add(1)
	a.cur = a.getBuf()
	acks := a.curAcks
	a.curAcks, a.pushingInCur = nil, false
	a.registerAcks(env.Seq, acks)
	seq := env.Seq
	n := len(env.Measurements)
	if len(acks) == 0 && a.holdLocked(env) { // whole.go
		return
	}
	batches, measurements, err := a.q.push(env, a.header+size, a.keysLocked(acks), len(acks) > 0)
	a.queuedLocked(seq, acks, err)
	if err != nil {
		a.c.dropped.Add(1)
		a.c.droppedMeasurements.Add(uint64(n))
		a.log.Error("could not store a batch; dropped", "seq", env.Seq, "measurements", n, "err", err)
	}
	if batches > 0 {
		a.c.dropped.Add(uint64(batches))
		a.c.droppedMeasurements.Add(uint64(measurements))
		a.log.Error("queue full: dropped the oldest batches", "batches", batches, "measurements", measurements)
	}
}

func (a *Agent) getBuf() []meter.Measurement {
	if p, ok := a.bufs.Get().(*[]meter.Measurement); ok {
		return (*p)[:0]
	}
	return make([]meter.Measurement, 0, a.cfg.batchSize)
}

func (a *Agent) putBuf(b []meter.Measurement) {
	clear(b) // drop references to label slices and strings
	b = b[:0]
	a.bufs.Put(&b)
}

// Close stops the agent and releases what it owns. If Run is running, Close
// makes it stop as if its context had ended (drivers stop, the last batch is
// flushed, queued batches are sent for up to the drain timeout) and waits
// for Run to return, or for ctx to end first (then ctx's error is returned
// and the sender is closed under the drain). Then it closes the spool, if
// Run did not, and the transport.Sender given to New. Batches added to an
// agent without a spool that never ran are dropped. Close is safe to call
// more than once and from several goroutines; Add and Run fail with
// ErrStopped after it.
//
// With transport.Pipe, closing the sending end closes both ends: close the
// agent before the publisher that reads the other end has no more use for
// it, that is, after the publisher's Run has drained what the agent sent.
func (a *Agent) Close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		close(a.stop)
		var errs []error
		if a.running.CompareAndSwap(false, true) {
			// Run never ran, and now never will: release the queue here.
			a.mu.Lock()
			a.stopped = true
			a.mu.Unlock()
			a.q.close()
			_, _, err := a.q.shutdown() // a memory queue's batches are dropped, as documented
			errs = append(errs, err)
		} else {
			select {
			case <-a.runDone:
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("agent: close: Run still draining: %w", ctx.Err()))
			}
		}
		if err := a.sender.Close(); err != nil {
			errs = append(errs, fmt.Errorf("agent: close sender: %w", err))
		}
		a.rl.mu.Lock() // Reconfigure may replace the stages
		if c, ok := stage.As[io.Closer](a.stages); ok {
			a.mu.Lock() // never while Process runs
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("agent: close stages: %w", err))
			}
			a.mu.Unlock()
		}
		a.rl.mu.Unlock()
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// Run collects, batches and sends until ctx ends, then stops the drivers,
// sends what is queued for up to the drain timeout, and returns. It returns
// nil when everything collected was acknowledged, or an error counting what
// was not. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return ErrStopped
	}
	defer close(a.runDone)
	// Close stops Run as if ctx had ended.
	ctx, cancel := context.WithCancel(ctx)
	watched := make(chan struct{})
	defer func() { cancel(); <-watched }()
	go func() {
		defer close(watched)
		select {
		case <-a.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	// Senders outlive ctx by the drain timeout; drivers and the age flusher stop with ctx.
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()

	var drivers, senders sync.WaitGroup
	a.startDrivers(ctx, &drivers) // reload.go, schedule.go
	for range a.cfg.inFlight {
		senders.Go(func() { a.runSender(sendCtx) })
	}
	if a.cfg.statsEvery > 0 {
		drivers.Go(func() { a.logStats(ctx) })
	}
	a.ageFlusher(ctx)
	a.stopDrivers() // no more driver goroutines from Reconfigure

	// ctx ended: wait for drivers (bounded: a driver that ignores ctx must
	// not hold the agent forever), flush, and drain.
	// One deadline for both waits: a context's Done stays closed, where a
	// timer's channel would fire only once.
	deadline, stopDeadline := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.drain)
	defer stopDeadline()
	driversDone := make(chan struct{})
	go func() { drivers.Wait(); close(driversDone) }()
	var errs []error
	select {
	case <-driversDone:
	case <-deadline.Done():
		errs = append(errs, errors.New("agent: a driver did not return within the drain timeout after cancellation"))
		a.log.Error("a driver ignores context cancellation; leaving it behind")
	}
	a.mu.Lock()
	a.flushLocked()
	a.stopped = true
	a.mu.Unlock()
	a.q.close()

	sendersDone := make(chan struct{})
	go func() { senders.Wait(); close(sendersDone) }()
	select {
	case <-sendersDone:
	case <-deadline.Done():
		cancelSend()
		<-sendersDone
	}
	kept, lost, err := a.q.shutdown()
	a.settleRest()
	a.c.unsent.Add(uint64(lost))
	if err != nil {
		errs = append(errs, err)
	}
	if n := a.c.unsent.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("agent: %d measurements not acknowledged by the drain deadline and lost", n))
	}
	if err := errors.Join(errs...); err != nil {
		a.log.Error("stopped with undelivered measurements", "err", err)
		return err
	}
	if kept > 0 {
		a.log.Info("stopped; unacknowledged batches stay in the spool for the next start", "measurements", kept)
		return nil
	}
	a.log.Info("stopped; everything collected was acknowledged")
	return nil
}

func (a *Agent) logStats(ctx context.Context) {
	statslog.Every(ctx, a.log, "agent stats", a.cfg.statsEvery, func() slog.LogValuer { return a.Stats() })
}

// collect runs one collection with cctx, its deadline, recovering a panic
// so that one broken driver cannot take the agent down; the driver is tried
// again next interval.
func (a *Agent) collect(ctx, cctx context.Context, s schedule) {
	start := time.Now()
	var ms []meter.Measurement
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				a.c.panics.Add(1)
				err = fmt.Errorf("panic: %v", r)
				a.log.Error("driver panicked; it will be called again next interval",
					"driver", s.name, "panic", r, "stack", string(debug.Stack()))
			}
		}()
		ms, err = s.d.Collect(cctx)
	}()
	a.c.collections.Add(1)
	if took := time.Since(start); took > s.timeout {
		a.c.overruns.Add(1)
		a.log.Warn("driver overran its timeout", "driver", s.name, "timeout", s.timeout, "took", took)
	}
	if err != nil && ctx.Err() == nil {
		a.c.collectErrors.Add(1)
		a.log.Warn("collection failed", "driver", s.name, "err", err, "measurements", len(ms))
	}
	if len(ms) > 0 {
		// A collection is admitted whole: it waits, up to the interval, for
		// the senders to make room before older batches are dropped. (Sizes
		// are counted only when the memory queue is half full.)
		if a.cfg.spoolDir == "" && a.q.pendingBytes() > a.cfg.queueBytes/2 {
			need := 0
			for i := range ms {
				need += transport.MeasurementSize(&ms[i], a.cfg.host)
			}
			a.q.room(ctx, need, s.interval)
		}
		_ = a.add(s.name, ms) // add logs invalid measurements with the driver name
	}
}

func (a *Agent) runSender(ctx context.Context) {
	var sl slot
	for a.q.next(ctx, &sl) {
		seq, _ := sl.header()
		sl.fail = nil
		switch a.deliver(ctx, &sl) {
		case delivered:
			if err := a.q.done(&sl); err != nil {
				a.log.Warn("could not forget an acknowledged batch; it may be resent", "err", err)
			}
			if sl.fail != nil {
				a.settleSeq(seq, fmt.Errorf("agent: %w: %w", driver.ErrNotDelivered, sl.fail))
			} else {
				a.settleSeq(seq, nil)
			}
		case gaveUp:
			a.release(&sl)
			a.settleSeq(seq, notDelivered("not acknowledged by the publisher before the agent stopped"))
		case closed:
			a.release(&sl)
			a.settleSeq(seq, notDelivered("the sender is closed"))
			return // nothing more can be sent; Run counts what stays queued
		}
	}
}

// release gives a batch that was not delivered back to the queue, or counts
// it as unsent where the queue cannot keep it.
func (a *Agent) release(sl *slot) {
	_, n := sl.header()
	if !a.q.release(sl) {
		a.c.unsent.Add(uint64(n))
	}
}

type outcome int

const (
	delivered outcome = iota // acknowledged, rejected or dropped: forget the batch
	gaveUp                   // ctx ended first: keep it if the store can
	closed                   // the sender is closed (Close): keep it if the store can, send no more
)

// deliver sends the batch in sl until the publisher accepts or rejects it,
// or ctx ends: its stored frame as it is when there is one and the sender
// takes raw frames, the decoded envelope otherwise.
func (a *Agent) deliver(ctx context.Context, sl *slot) outcome {
	seq, count := sl.header()
	return a.sendBatch(ctx, sl, sl.env, seq, count)
}

// sendBatch sends env, or sl's stored frame when env is nil, until it is
// delivered or cannot be, with backoff between attempts. What the error
// says decides (transport's Errors):
//
//   - too large (the sender's own frame check, or the publisher's answer
//     with transport.ReasonTooLarge): the batch is split and its parts sent
//     in its place (split);
//   - refused (transport.ErrRefused: the publisher's configuration refuses
//     this agent): the batch is kept and sent again with backoff, logged as
//     an error at each attempt, and Refused reports it until an answer
//     comes that is not a refusal;
//   - permanent (transport.IsPermanent): the batch is dropped, counted in
//     Failed, and the batches behind it go on;
//   - rejected: dropped, counted in Rejected;
//   - anything else (a retry answer, no connection, a timeout): sent again.
func (a *Agent) sendBatch(ctx context.Context, sl *slot, env *transport.Envelope, seq uint64, count int) outcome {
	backoff := a.cfg.backoffMin
	n := uint64(count)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			a.c.resent.Add(1)
		}
		sctx, cancel := withTimeout(ctx, a.cfg.sendTimeout) // no timer made per send (schedule.go)
		var err error
		if env == nil {
			err = a.raw.SendRaw(sctx, sl.frame, seq)
		} else {
			err = a.sender.Send(sctx, env)
		}
		cancel()
		var reply *transport.ReplyError
		if err == nil || errors.As(err, &reply) && !errors.Is(err, transport.ErrRefused) {
			a.refused.Store(nil) // the publisher answers on the batch again
		}
		switch {
		case err == nil:
			a.c.acked.Add(1)
			a.c.ackedMeasurements.Add(n)
			return delivered
		case errors.Is(err, transport.ErrTooLarge) && (transport.IsPermanent(err) || reply != nil || count > 1):
			// A sender's guess (a connection the receiver dropped on a large
			// frame) splits a batch, but never drops a single measurement:
			// that one is sent again.
			return a.split(ctx, sl, env, seq, count, err)
		case olderRejected(err, sl, env): // version.go
			return a.resendOlder(ctx, sl, env, seq, count, err)
		case errors.Is(err, transport.ErrRefused):
			a.c.refusals.Add(1)
			a.refused.Store(&err)
			a.log.Error("the publisher refuses this agent: its configuration or ours is wrong (tenant, key, sealing); "+
				"batches are kept and sent again until it accepts them",
				"seq", seq, "queued_batches", a.q.pending(), "in", backoff, "err", err)
		case transport.IsPermanent(err):
			a.c.failed.Add(1)
			a.c.failedMeasurements.Add(n)
			a.log.Error("a batch cannot be sent, and sending it again cannot help; dropped", "seq", seq, "measurements", n, "err", err)
			sl.fail = err
			return delivered
		case errors.Is(err, transport.ErrRejected):
			a.c.rejected.Add(1)
			a.c.rejectedMeasurements.Add(n)
			a.log.Error("publisher rejected a batch; dropped", "seq", seq, "measurements", n, "err", err)
			sl.fail = err
			return delivered
		case ctx.Err() != nil:
			return gaveUp
		case errors.Is(err, transport.ErrClosed):
			return closed
		default:
			a.log.Warn("send failed; will resend", "seq", seq, "attempt", attempt+1, "in", backoff, "err", err)
		}
		t := time.NewTimer(jittered(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return gaveUp
		case <-t.C:
		}
		backoff = min(backoff*2, a.cfg.backoffMax)
	}
}

// split sends a batch too large for a frame (err says whose) as two
// halves, each split again if still too large, and drops only a single
// measurement too large for any frame. The first half keeps the batch's
// Seq: the publisher never accepted it, so it has nothing to de-duplicate
// under it; the second takes a new Seq. When the publisher said its limit,
// batches are cut to it from then on.
//
// A stored batch is split as it is sent, not in the store: if the agent
// stops before every part is acknowledged, the whole batch is sent again
// at the next start (split again, and the parts sent before may arrive
// twice, under the first part's Seq as a duplicate the publisher drops, and
// under a new Seq for the others).
func (a *Agent) split(ctx context.Context, sl *slot, env *transport.Envelope, seq uint64, count int, err error) outcome {
	if env == nil { // a stored frame, sent as it is until now
		if env = a.readStored(sl, seq, count, "too large to send", "split it", err); env == nil {
			return delivered
		}
	}
	var reply *transport.ReplyError
	if errors.As(err, &reply) {
		a.lowerLimit(reply.Ack.Limit, err)
	}
	if len(env.Measurements) <= 1 {
		a.c.oversized.Add(uint64(len(env.Measurements)))
		name := ""
		if len(env.Measurements) == 1 {
			name = env.Measurements[0].Name
		}
		a.log.Error("a measurement too large for any frame; dropped", "seq", seq, "name", name, "err", err)
		return delivered
	}
	a.c.split.Add(1)
	half := len(env.Measurements) / 2
	first, second := *env, *env
	first.Measurements = env.Measurements[:half:half]
	second.Measurements = env.Measurements[half:]
	a.mu.Lock()
	a.seq++
	second.Seq = a.seq
	a.mu.Unlock()
	second.SentAt = time.Now()
	a.c.batches.Add(1)
	a.log.Debug("split a batch too large to send", "seq", seq, "measurements", len(env.Measurements),
		"into", []uint64{first.Seq, second.Seq}, "err", err)
	if o := a.sendBatch(ctx, sl, &first, first.Seq, len(first.Measurements)); o != delivered {
		return o
	}
	return a.sendBatch(ctx, sl, &second, second.Seq, len(second.Measurements))
}

// readStored decodes sl's stored frame, a batch of count measurements,
// into sl.buf, to send it otherwise than as it is (what says why, to what
// end; err is what made it necessary). A frame that does not decode (the
// agent's own encoding: never) is dropped, counted and logged, and
// readStored returns nil.
func (a *Agent) readStored(sl *slot, seq uint64, count int, what, to string, err error) *transport.Envelope {
	var dec transport.Decoder
	dec.Limits.MaxFrameSize = len(sl.frame)
	dec.Limits.MaxMeasurements = max(count, 1)
	if derr := dec.Decode(sl.frame, &sl.buf); derr != nil {
		a.c.failed.Add(1)
		a.c.failedMeasurements.Add(uint64(count))
		a.log.Error("a stored batch "+what+" cannot be read to "+to+"; dropped", "seq", seq,
			"measurements", count, "err", errors.Join(err, derr))
		return nil
	}
	return &sl.buf
}

// lowerLimit cuts batches to the publisher's frame limit, when it said one
// smaller than the agent's, and logs it once (for each new limit); a
// publisher that gave none is logged once.
func (a *Agent) lowerLimit(limit uint64, err error) {
	if limit == 0 {
		if a.splitLogged.CompareAndSwap(false, true) {
			a.log.Warn("the publisher refuses a batch as too large without saying its limit; splitting batches it refuses",
				"sender_limit", a.senderLimit, "err", err)
		}
		return
	}
	a.mu.Lock()
	lowered := limit < uint64(a.limit) && limit > uint64(a.header)
	if lowered {
		a.limit = int(limit)
		a.budget = a.limit - a.header
		a.cut = cutRoom(a.limit, a.prefer, a.header)
	}
	a.mu.Unlock()
	if lowered {
		a.log.Warn("the publisher accepts smaller frames than the sender; batches are split and cut to its limit from now on",
			"sender_limit", a.senderLimit, "publisher_limit", limit)
	}
}

// Refused returns the publisher's last answer that its configuration
// refuses this agent (an unknown tenant, a wrong key, sealing required or
// not accepted: an error wrapping transport.ErrRefused), and nil when no
// such answer came or the publisher has answered otherwise since. While
// refused, batches are kept and sent again with backoff: a readiness check
// fails on it.
func (a *Agent) Refused() error {
	if p := a.refused.Load(); p != nil {
		return *p
	}
	return nil
}

// jittered spreads d by ±20% so that agents resending after one outage do
// not all arrive together.
func jittered(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()-0.5)*0.4*float64(d))
}
