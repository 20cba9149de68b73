package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// closeGrace is how long Close waits for requests in flight before it
// closes their connections.
const closeGrace = time.Second

type config struct {
	maxBytes  int64
	addr      string
	tokenFile string
	usersFile string
	token     string
	insecure  bool
}

// Option configures a Sink made by New.
type Option func(*config) error

// WithMaxBytes bounds the memory the history takes, series and points
// counted; zero means DefaultMaxBytes. Below 64 KiB New fails.
func WithMaxBytes(n int64) Option {
	return func(c *config) error {
		if n == 0 {
			n = DefaultMaxBytes
		}
		if n < 64<<10 {
			return fmt.Errorf("WithMaxBytes(%d): want at least 64 KiB", n)
		}
		c.maxBytes = n
		return nil
	}
}

// WithAddr sets the address the server listens on, such as
// "127.0.0.1:7070" (port 0 picks a free port; see Sink.Addr). Empty means no
// server of its own: use Sink.Handler. An address that is not loopback needs
// WithTokenFile, WithToken or WithInsecure.
func WithAddr(addr string) Option {
	return func(c *config) error { c.addr = addr; return nil }
}

// WithTokenFile makes every request need the header "Authorization: Bearer
// TOKEN", TOKEN being the content of the file (surrounding white space
// removed), or basic auth with TOKEN as the password. The file is read when
// the server starts, not by New, and again whenever it changes, so that a
// token rotated in the file takes effect without a restart. Like a key file,
// it must be a regular file that only its owner may read or write (chmod 600).
func WithTokenFile(path string) Option {
	return func(c *config) error {
		if path == "" {
			return errors.New("WithTokenFile: empty path")
		}
		c.tokenFile = path
		return nil
	}
}

// WithUsersFile makes every request need basic auth with a user and
// password of the file, as `htpasswd -B -c FILE USER` writes it: a line
// "user:bcrypt-hash" per user, blank lines and lines starting with # skipped;
// other hash schemes are refused. With WithTokenFile or WithToken too,
// either is accepted. The file is read when the server starts and again
// whenever it changes, and must be a regular file that only its owner may
// read or write (chmod 600).
func WithUsersFile(path string) Option {
	return func(c *config) error {
		if path == "" {
			return errors.New("WithUsersFile: empty path")
		}
		c.usersFile = path
		return nil
	}
}

// WithToken is WithTokenFile with the token itself, for programs that hold
// it already.
func WithToken(token string) Option {
	return func(c *config) error {
		if strings.TrimSpace(token) == "" {
			return errors.New("WithToken: empty token")
		}
		c.token = strings.TrimSpace(token)
		return nil
	}
}

// WithInsecure lets the server listen on an address that is not loopback
// without a token: anyone who reaches the address sees the whole view.
func WithInsecure() Option {
	return func(c *config) error { c.insecure = true; return nil }
}

// Sink keeps the recent history of every series written to it in memory and
// serves it over HTTP: the page, the JSON API, the Atom feed of state changes
// and the event stream. Write, Close and the HTTP handlers are safe to use
// together; Write never waits for a reader's network.
type Sink struct {
	cfg config

	mu     sync.RWMutex
	st     *store
	closed bool
	wake   chan struct{} // closed and replaced after a Write, when streams wait
	done   chan struct{} // closed by Close: streams end

	streams atomic.Int64
	behind  atomic.Uint64 // streams that fell behind the log
	started atomic.Bool

	srvMu   sync.Mutex
	srv     *http.Server
	ln      net.Listener
	serveWG sync.WaitGroup
	auth    *auth // nil: no credentials asked
	handler http.Handler
}

// New returns a Sink, or an error naming an invalid option. It does no I/O:
// the server, if WithAddr gave an address, starts with Start or on the first
// Write.
func New(opts ...Option) (*Sink, error) {
	c := config{maxBytes: DefaultMaxBytes}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
	}
	if c.addr != "" {
		host, _, err := net.SplitHostPort(c.addr)
		if err != nil {
			return nil, fmt.Errorf("web: address %q: %w", c.addr, err)
		}
		if !isLoopback(host) && c.token == "" && c.tokenFile == "" && c.usersFile == "" && !c.insecure {
			return nil, fmt.Errorf("web: address %q is not loopback: give a token file (token_file=) or a users file (users_file=), or say insecure=1", c.addr)
		}
	}
	s := &Sink{cfg: c, st: newStore(c.maxBytes), wake: make(chan struct{}), done: make(chan struct{}), auth: newAuth(&c)}
	s.handler = s.routes()
	return s, nil
}

// isLoopback reports whether host names a loopback address, without asking
// a resolver: "localhost", 127.0.0.0/8 and ::1. An empty host (every
// interface) is not loopback.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func init() {
	sink.RegisterScheme("web", openURL)
}

// openURL understands
// web://HOST:PORT?max_bytes=N&token_file=PATH&users_file=PATH&insecure=1.
// It does no I/O.
func openURL(_ context.Context, u *url.URL) (sink.Sink, error) {
	if u.User != nil {
		return nil, errors.New("web: credentials in the URL are refused (URLs are logged): use token_file=")
	}
	if u.Host == "" {
		return nil, errors.New("web: URL has no host:port (want web://127.0.0.1:7070)")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, errors.New("web: URL takes no path (want web://127.0.0.1:7070)")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("web: query: %w", err)
	}
	opts := []Option{WithAddr(u.Host)}
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "max_bytes":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("web: max_bytes=%q: want a number of bytes", v)
			}
			opts = append(opts, WithMaxBytes(n))
		case "token_file":
			opts = append(opts, WithTokenFile(v))
		case "users_file":
			opts = append(opts, WithUsersFile(v))
		case "insecure":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("web: insecure=%q: want 1 or 0", v)
			}
			if b {
				opts = append(opts, WithInsecure())
			}
		case "token":
			return nil, errors.New("web: a raw token in the URL is refused (URLs are logged): put it in a file and give token_file=")
		default:
			return nil, fmt.Errorf("web: unknown parameter %q (known: max_bytes, token_file, users_file, insecure)", k)
		}
	}
	return New(opts...)
}

var _ sink.Starter = (*Sink)(nil)

// Write stores batch. The first Write starts the server, if the Sink has an
// address and Start was not called; when the server cannot start, Write
// stores nothing and returns the error, to be retried.
func (s *Sink) Write(ctx context.Context, batch []meter.Measurement) error {
	if s.cfg.addr != "" && !s.started.Load() {
		if err := s.Start(ctx); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("web: write after Close: %w", sink.ErrClosed)
	}
	for i := range batch {
		s.st.add(&batch[i])
	}
	var wake chan struct{}
	if len(batch) > 0 && s.streams.Load() > 0 {
		wake = s.wake
		s.wake = make(chan struct{})
	}
	s.mu.Unlock()
	if wake != nil {
		close(wake)
	}
	return nil
}

// Start reads the token and users files, if any, and starts the server on
// the Sink's address, if it has one and it is not running yet; it returns
// once the address is bound, ctx bounding the resolving and binding only.
// Close stops it. It makes the Sink a sink.Starter: a publisher's Run calls
// it before it receives, so the page is served before the first batch. A
// Sink served through Handler with WithTokenFile or WithUsersFile needs
// Start too: until then it refuses every request.
func (s *Sink) Start(ctx context.Context) error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return fmt.Errorf("web: start after Close: %w", sink.ErrClosed)
	}
	if s.srv != nil {
		return nil
	}
	if s.auth != nil {
		if err := s.auth.start(); err != nil {
			return err
		}
	}
	if s.cfg.addr == "" {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.addr)
	if err != nil {
		return fmt.Errorf("web: listen: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.started.Store(true)
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		_ = s.srv.Serve(ln) // returns http.ErrServerClosed after Shutdown
	}()
	return nil
}

// Addr returns the address the server listens on, once started (with the
// port chosen when the address asked for port 0), or "".
func (s *Sink) Addr() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops the server, event streams included, within ctx; the history
// is kept for Read-like calls (Stats, Handler) but Write fails from then on.
// A second Close returns nil.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()

	s.srvMu.Lock()
	srv := s.srv
	s.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	// Streams end when done closes, unless one is stuck writing to a
	// browser that does not read: after a short grace, or when ctx ends,
	// the connections left are closed.
	grace, cancel := context.WithTimeout(ctx, closeGrace)
	defer cancel()
	var err error
	if srv.Shutdown(grace) != nil {
		err = srv.Close()
		if ctx.Err() != nil {
			err = errors.Join(fmt.Errorf("web: shutdown: %w", ctx.Err()), err)
		}
	}
	s.serveWG.Wait()
	return err
}

// Stats returns the store's counters.
func (s *Sink) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.st.stats()
	st.StreamsDropped = s.behind.Load()
	return st
}

// Measurements returns every point held, as measurements, oldest written
// first. Labels with meter.ReservedPrefix are not part of a series'
// identity: each point carries those its series was last written with.
func (s *Sink) Measurements() []meter.Measurement {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.all()
}

// Handler returns the view's HTTP handler, with the Sink's token check, for
// a program that serves it itself (then give New no address).
func (s *Sink) Handler() http.Handler { return s.handler }
