package riemanntest

import (
	"cmp"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	riemannpb "github.com/riemann/riemann-go-client/proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// MaxFrame is the largest TCP frame the server reads; a longer one closes the
// connection.
const MaxFrame = 64 << 20

// Event is one event the server received, decoded.
type Event struct {
	Host        string
	Service     string
	State       string
	Description string
	// Metric is metric_d, else metric_f, else metric_sint64.
	Metric float64
	// Time is time_micros, else time (whole seconds). When the client sent
	// neither, the server fills in the arrival time, as Riemann does, and sets
	// ServerTime (Proto then carries the time too, for queries).
	Time       time.Time
	ServerTime bool
	// TTL is the ttl field in seconds; HasTTL says whether it was set.
	TTL    float32
	HasTTL bool
	Tags   []string
	// Attributes maps keys to values (the last wins for a repeated key).
	Attributes map[string]string
	// Transport is "tcp", "tls" or "udp".
	Transport string
	// Proto is the event as decoded (with the time filled in, see Time).
	// Do not modify it.
	Proto *riemannpb.Event
}

func newEvent(p *riemannpb.Event, transport string) Event {
	e := Event{
		Host:        p.GetHost(),
		Service:     p.GetService(),
		State:       p.GetState(),
		Description: p.GetDescription(),
		TTL:         p.GetTtl(),
		HasTTL:      p.Ttl != nil,
		Tags:        p.GetTags(),
		Transport:   transport,
		Proto:       p,
	}
	switch {
	case p.MetricD != nil:
		e.Metric = p.GetMetricD()
	case p.MetricF != nil:
		e.Metric = float64(p.GetMetricF())
	default:
		e.Metric = float64(p.GetMetricSint64())
	}
	switch {
	case p.TimeMicros != nil:
		e.Time = time.UnixMicro(p.GetTimeMicros())
	case p.Time != nil:
		e.Time = time.Unix(p.GetTime(), 0)
	default:
		now := time.Now()
		e.Time, e.ServerTime = now, true
		p.Time, p.TimeMicros = proto.Int64(now.Unix()), proto.Int64(now.UnixMicro())
	}
	if len(p.Attributes) > 0 {
		e.Attributes = make(map[string]string, len(p.Attributes))
		for _, a := range p.Attributes {
			e.Attributes[a.GetKey()] = a.GetValue()
		}
	}
	return e
}

type config struct {
	addr   string
	udp    bool
	tls    *tls.Config
	expiry bool
}

// Option configures a Server made by Listen or NewServer.
type Option func(*config) error

// DefaultAddr is where a server listens without WithAddr: a free port of
// the loopback interface.
const DefaultAddr = "127.0.0.1:0"

// WithAddr sets the TCP address to listen on; empty means DefaultAddr. The
// UDP listener, if any, takes the same port.
func WithAddr(addr string) Option {
	return func(c *config) error { c.addr = cmp.Or(addr, DefaultAddr); return nil }
}

// WithExpiry makes the index forget an event once its time plus its ttl
// has passed, as a Riemann server with periodically-expire does (here at
// once): queries no longer find it. Events are still recorded (Events).
// Without it the index keeps every latest event, whatever its age.
func WithExpiry() Option { return func(c *config) error { c.expiry = true; return nil } }

// WithUDP adds a UDP listener on the TCP listener's port; see UDPAddr.
func WithUDP() Option { return func(c *config) error { c.udp = true; return nil } }

// WithTLS makes the TCP listener speak TLS with the given configuration. Set
// ClientAuth to tls.RequireAndVerifyClientCert and ClientCAs to require
// client certificates. A nil c makes Listen fail.
func WithTLS(c *tls.Config) Option {
	return func(cfg *config) error {
		if c == nil {
			return errors.New("WithTLS: nil *tls.Config")
		}
		cfg.tls = c.Clone()
		return nil
	}
}

// Server is a Riemann server for tests. It is safe for concurrent use.
type Server struct {
	cfg     config
	tcpAddr string
	udpAddr string

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced whenever events arrive
	events   []Event
	msgSizes []int
	latest   map[[2]string]Event // (host, service) -> its latest event: the index
	reject   string
	rejectN  int // Msgs left to refuse with rejectNr
	rejectNr string
	stall    chan struct{} // non-nil while stalled; closed by Release
	stallEnd time.Time     // zero: until Release
	held     int           // Msgs read and not yet handled or dropped
	mute     bool          // Crash: record, but answer nothing
	running  bool
	quit     chan struct{} // closed by Stop
	ln       net.Listener
	pc       net.PacketConn
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// Listen starts a server on 127.0.0.1 (see WithAddr). Stop it with Close.
func Listen(opts ...Option) (*Server, error) {
	cfg := config{addr: DefaultAddr}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("riemanntest: %w", err)
		}
	}
	s := &Server{
		cfg:     cfg,
		tcpAddr: cfg.addr,
		changed: make(chan struct{}),
		latest:  map[[2]string]Event{},
		conns:   map[net.Conn]struct{}{},
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// NewServer starts a server like Listen, fails tb if it cannot, and closes
// it when the test ends.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := Listen(opts...)
	if err != nil {
		tb.Fatal(err) // already "riemanntest: ..."
	}
	tb.Cleanup(s.Close)
	return s
}

// Addr returns the TCP (or TLS) address, "127.0.0.1:port". It stays the same
// across Stop and Start.
func (s *Server) Addr() string { return s.tcpAddr }

// UDPAddr returns the UDP address, or "" without WithUDP.
func (s *Server) UDPAddr() string { return s.udpAddr }

// Port returns the port of Addr, handy for command lines.
func (s *Server) Port() string {
	_, p, _ := net.SplitHostPort(s.tcpAddr)
	return p
}

// Start listens again on the same address(es) after Stop. Recorded events
// are kept. It does nothing when the server runs.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	ln, err := net.Listen("tcp", s.tcpAddr)
	if err != nil {
		return fmt.Errorf("riemanntest: listen tcp %s: %w", s.tcpAddr, err)
	}
	s.tcpAddr = ln.Addr().String()
	transport := "tcp"
	if s.cfg.tls != nil {
		ln = tls.NewListener(ln, s.cfg.tls)
		transport = "tls"
	}
	if s.cfg.udp {
		udpAddr := s.udpAddr
		if udpAddr == "" {
			udpAddr = s.tcpAddr
		}
		pc, err := net.ListenPacket("udp", udpAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("riemanntest: listen udp %s: %w", udpAddr, err)
		}
		s.pc, s.udpAddr = pc, pc.LocalAddr().String()
	}
	s.ln = ln
	s.quit = make(chan struct{})
	s.running = true
	s.wg.Add(1)
	go s.accept(ln, transport, s.quit)
	if s.pc != nil {
		s.wg.Add(1)
		go s.readUDP(s.pc, s.quit)
	}
	return nil
}

// Stop closes the listeners and every connection, as a crashed or stopped
// server would, and waits for its goroutines. Messages held by Stall are
// dropped unanswered. Recorded events are kept; Start listens again.
func (s *Server) Stop() {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	s.running = false
	close(s.quit)
	_ = s.ln.Close()
	if s.pc != nil {
		_ = s.pc.Close()
		s.pc = nil
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Restart stops the server and starts it again on the same port.
func (s *Server) Restart() error {
	s.Stop()
	return s.Start()
}

// Close stops the server for good (it is Stop: Start would work again).
func (s *Server) Close() { s.Stop() }

// DropConnections closes every current TCP connection; the listener stays.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// Reject makes the server answer every Msg carrying events with ok=false and
// the given error text, without recording the events; "" accepts again.
// Datagrams are dropped silently while rejecting.
func (s *Server) Reject(reason string) {
	s.mu.Lock()
	s.reject = reason
	s.mu.Unlock()
}

// RejectNext makes the server refuse the next n Msgs carrying events, as
// Reject does, then accept again: a way to refuse part of a batch.
func (s *Server) RejectNext(n int, reason string) {
	s.mu.Lock()
	s.rejectN, s.rejectNr = n, reason
	s.mu.Unlock()
}

// Stall makes the server hold every Msg it receives, unanswered and
// unrecorded, until Release is called or, when d > 0, until d has passed.
// Held messages are then handled in order (even if the client has gone:
// its events are recorded, as a real server that was slow would).
func (s *Server) Stall(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stall == nil {
		s.stall = make(chan struct{})
	}
	s.stallEnd = time.Time{}
	if d > 0 {
		s.stallEnd = time.Now().Add(d)
	}
}

// Crash records the Msgs the server holds (see Stall) without answering
// them, closes their connections, and stops: a store that crashed after it
// took a write and before it answered. The writer sees its connection fail
// and cannot know that its events were kept. Start starts the server again.
func (s *Server) Crash() {
	s.mu.Lock()
	s.mute = true
	s.mu.Unlock()
	s.Release()
	for {
		s.mu.Lock()
		n := s.held
		s.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	s.Stop()
	s.mu.Lock()
	s.mute = false
	s.mu.Unlock()
}

// Held returns how many Msgs the server holds unanswered right now: during
// a Stall, those it took and keeps, so that a test can wait for a write to
// be in the store's hands before it crashes the store.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// Release ends a Stall.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stall != nil {
		close(s.stall)
		s.stall = nil
	}
}

// Events returns a copy of every event recorded, in arrival order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// Count returns how many events were recorded.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// MsgSizes returns how many events each recorded Msg carried, in order.
func (s *Server) MsgSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgSizes)
}

// Take returns the events recorded since the last Take (or Reset), in
// arrival order, and forgets them, so that a long-running server (the
// riemann-test-server command) holds only what it has not yet printed. The
// index that queries read keeps the latest event of each host and service.
// Count and Events then start over from what arrives next.
func (s *Server) Take() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := s.events
	s.events, s.msgSizes = nil, nil
	return ev
}

// Reset forgets every recorded event and Msg, and empties the index.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events, s.msgSizes = nil, nil
	clear(s.latest)
}

// WaitFor waits until at least n events were recorded, or fails after
// timeout with an error saying how many arrived.
func (s *Server) WaitFor(n int, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		s.mu.Lock()
		got, ch := len(s.events), s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-t.C:
			return fmt.Errorf("riemanntest: %d events after %v, want %d", got, timeout, n)
		}
	}
}

func (s *Server) accept(ln net.Listener, transport string, quit chan struct{}) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		s.mu.Lock()
		if !s.running || quit != s.quit {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c, transport, quit)
	}
}

func (s *Server) serve(c net.Conn, transport string, quit chan struct{}) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	var hdr [4]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > MaxFrame {
			return
		}
		buf = slices.Grow(buf[:0], int(n))[:n]
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		var reply *riemannpb.Msg
		msg := new(riemannpb.Msg)
		if err := proto.Unmarshal(buf, protoadapt.MessageV2Of(msg)); err != nil {
			reply = &riemannpb.Msg{Ok: proto.Bool(false), Error: proto.String("riemanntest: cannot decode Msg: " + err.Error())}
		} else {
			s.mu.Lock()
			s.held++
			s.mu.Unlock()
			ok := s.waitStall(quit)
			if ok {
				reply = s.handle(msg, transport)
			}
			s.mu.Lock()
			s.held--
			mute := s.mute
			s.mu.Unlock()
			if !ok || mute {
				return
			}
		}
		out, err := proto.Marshal(protoadapt.MessageV2Of(reply))
		if err != nil {
			return
		}
		frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(out)), uint32(len(out)))
		if _, err := c.Write(append(frame, out...)); err != nil {
			return
		}
	}
}

func (s *Server) readUDP(pc net.PacketConn, quit chan struct{}) {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		msg := new(riemannpb.Msg)
		if proto.Unmarshal(buf[:n], protoadapt.MessageV2Of(msg)) != nil {
			continue
		}
		if !s.waitStall(quit) {
			return
		}
		s.handle(msg, "udp")
	}
}

// waitStall blocks while the server is stalled; false means it stopped.
func (s *Server) waitStall(quit chan struct{}) bool {
	for {
		s.mu.Lock()
		ch, end := s.stall, s.stallEnd
		s.mu.Unlock()
		if ch == nil {
			return true
		}
		var (
			timer   *time.Timer
			timeout <-chan time.Time
		)
		if !end.IsZero() {
			d := time.Until(end)
			if d <= 0 {
				s.mu.Lock()
				if s.stall == ch {
					close(ch)
					s.stall = nil
				}
				s.mu.Unlock()
				return true
			}
			timer = time.NewTimer(d)
			timeout = timer.C
		}
		select {
		case <-ch:
		case <-timeout:
		case <-quit:
			if timer != nil {
				timer.Stop()
			}
			return false
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// handle records or answers one Msg and returns the reply.
func (s *Server) handle(msg *riemannpb.Msg, transport string) *riemannpb.Msg {
	if q := msg.GetQuery(); q != nil {
		pred, err := parseQuery(q.GetString_())
		if err != nil {
			return &riemannpb.Msg{Ok: proto.Bool(false), Error: proto.String(err.Error())}
		}
		return &riemannpb.Msg{Ok: proto.Bool(true), Events: s.query(pred)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reject != "" {
		return &riemannpb.Msg{Ok: proto.Bool(false), Error: proto.String(s.reject)}
	}
	if s.rejectN > 0 && len(msg.Events) > 0 {
		s.rejectN--
		return &riemannpb.Msg{Ok: proto.Bool(false), Error: proto.String(s.rejectNr)}
	}
	for _, p := range msg.Events {
		e := newEvent(p, transport)
		s.latest[[2]string{p.GetHost(), p.GetService()}] = e
		s.events = append(s.events, e)
	}
	s.msgSizes = append(s.msgSizes, len(msg.Events))
	close(s.changed)
	s.changed = make(chan struct{})
	return &riemannpb.Msg{Ok: proto.Bool(true)}
}

// query returns the latest event of every (host, service) matching pred,
// sorted by host then service, as Riemann's index would.
func (s *Server) query(pred predicate) []*riemannpb.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*riemannpb.Event
	now := time.Now()
	for _, e := range s.latest {
		if s.cfg.expiry && e.HasTTL && e.Time.Add(time.Duration(float64(e.TTL)*float64(time.Second))).Before(now) {
			continue
		}
		if pred(&e) {
			out = append(out, e.Proto)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GetHost() != out[j].GetHost() {
			return out[i].GetHost() < out[j].GetHost()
		}
		return out[i].GetService() < out[j].GetService()
	})
	return out
}
