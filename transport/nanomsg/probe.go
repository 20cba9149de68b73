package nanomsg

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.nanomsg.org/mangos/v3"
)

// mangos redials failed connections in the background and keeps the reason
// to itself: a Sender whose certificate is refused just never gets an
// answer. The Sender therefore watches its connections and, when a Send
// gets no answer while none is up, probes its addresses itself to learn why.

// probeTimeout bounds one probe of one address.
const probeTimeout = 5 * time.Second

// spHeaderREQ is the SP protocol header a REQ socket sends (protocol 48),
// and the one a REP peer answers with (49).
var (
	spHeaderREQ = [8]byte{0, 'S', 'P', 0, 0, 48, 0, 0}
	spHeaderREP = [8]byte{0, 'S', 'P', 0, 0, 49, 0, 0}
)

// watch tracks a Sender's connected pipes and its probes.
type watch struct {
	mu       sync.Mutex
	pipes    map[uint32]struct{}
	probing  bool
	lastRun  time.Time
	lastErr  error     // of the last probe; nil when it got through
	logged   string    // the last reason logged
	loggedAt time.Time // and when
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	interval time.Duration // between probes
	delay    time.Duration // a Send waits this long unconnected before a probe
	detached atomic.Uint64 // connections lost, ever
}

// relogAfter is how often the same reason is logged again.
const relogAfter = time.Minute

func newWatch(interval, delay time.Duration) *watch {
	ctx, cancel := context.WithCancel(context.Background())
	return &watch{pipes: map[uint32]struct{}{}, ctx: ctx, cancel: cancel, interval: interval, delay: delay}
}

// hook is the socket's pipe event hook.
func (w *watch) hook(ev mangos.PipeEvent, p mangos.Pipe) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ev {
	case mangos.PipeEventAttached:
		w.pipes[p.ID()] = struct{}{}
		w.lastErr = nil
	case mangos.PipeEventDetached:
		delete(w.pipes, p.ID())
		w.detached.Add(1)
	}
}

// stop cancels a probe in progress and waits for it.
func (w *watch) stop() {
	w.mu.Lock()
	w.cancel() // under mu: notConnected starts no probe after this
	w.mu.Unlock()
	w.wg.Wait()
}

// Connected reports whether the Sender has a connection to at least one
// receiver now.
func (s *Sender) Connected() bool {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	return len(s.watch.pipes) > 0
}

// notConnected is called when a Send got no answer. When no connection is
// up it returns why the last probe could not connect (or nil if unknown),
// and starts a new probe in the background when none ran for a while; the
// probe logs what it finds at Warn level.
func (s *Sender) notConnected() error {
	w := s.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pipes) > 0 {
		return nil
	}
	last := w.lastErr
	if !w.probing && time.Since(w.lastRun) >= w.interval && w.ctx.Err() == nil {
		w.probing, w.lastRun = true, time.Now()
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			ctx, cancel := context.WithTimeout(w.ctx, probeTimeout)
			err := s.Probe(ctx)
			cancel()
			w.mu.Lock()
			w.probing, w.lastErr = false, err
			log := err != nil && len(w.pipes) == 0 && w.ctx.Err() == nil &&
				(err.Error() != w.logged || time.Since(w.loggedAt) >= relogAfter)
			if log {
				w.logged, w.loggedAt = err.Error(), time.Now()
			}
			w.mu.Unlock()
			if log {
				s.cfg.logger.Warn("nanomsg: cannot connect to a receiver",
					slog.String("dial", s.addrs), slog.String("error", err.Error()))
			}
		}()
	}
	return last
}

// Probe connects to each of the Sender's addresses as the Sender does (same
// TLS configuration), exchanges the SP protocol headers, hangs up, and
// returns why it could not, one error per address that failed, or nil when
// every address answered. It tells a TLS certificate refused by either
// side, a wrong server name, a refused connection or a peer that is not a
// REP socket apart, which the Sender itself cannot report: its connections
// are made in the background. inproc addresses are not probed.
func (s *Sender) Probe(ctx context.Context) error {
	var errs []error
	for _, a := range strings.Split(s.addrs, ",") {
		if err := probe(ctx, a, s.cfg.tls); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a, err))
		}
	}
	return errors.Join(errs...)
}

func probe(ctx context.Context, addr string, cfg *tls.Config) error {
	scheme, rest, _ := strings.Cut(addr, "://")
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	var conn net.Conn
	var err error
	switch scheme {
	case "tcp":
		conn, err = d.DialContext(ctx, "tcp", rest)
	case "ipc":
		conn, err = d.DialContext(ctx, "unix", rest)
	case "tls+tcp":
		td := tls.Dialer{NetDialer: &d, Config: cfg}
		conn, err = td.DialContext(ctx, "tcp", rest)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	// With TLS 1.3 a server refuses the client's certificate after the
	// client's side of the handshake is done: the refusal arrives on the
	// first read.
	if _, err := conn.Write(spHeaderREQ[:]); err != nil {
		return err
	}
	var h [8]byte
	if _, err := io.ReadFull(conn, h[:]); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("no protocol header within %v: %w", probeTimeout, ctx.Err())
		}
		return err
	}
	if h != spHeaderREP {
		return fmt.Errorf("the peer is not a REP socket (header % x)", h)
	}
	return nil
}
