package agenthttp

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/internal/selfmetrics"
)

// Option configures New.
type Option func(*config)

type config struct {
	staleAfter time.Duration
	extra      []prometheus.Collector
}

// WithStaleAfter sets how long batches may stay queued with none leaving
// the queue before /readyz answers 503. The default is three times
// agent.DefaultBatchAge plus agent.DefaultSendTimeout; give three times the
// agent's batch age plus its send timeout when they differ.
func WithStaleAfter(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.staleAfter = d
		}
	}
}

// WithStats adds the figures of another Stats struct, such as the
// transport's, read at each scrape: each field tagged `log:"key"` is
// exported as prefix+key+"_total", a counter, or prefix+key, a gauge, when
// the tag has the gauge option (`log:"key,gauge"`). sample is a value of
// the struct type read returns.
func WithStats(prefix string, sample any, read func() any) Option {
	return func(c *config) {
		help := func(key string) string { return fmt.Sprintf("%s of %T", key, sample) }
		c.extra = append(c.extra, selfmetrics.Single(prefix, sample, help, read))
	}
}

// Server serves an agent's /metrics, /healthz and /readyz.
type Server struct {
	a          *agent.Agent
	reg        *prometheus.Registry
	staleAfter time.Duration
	srv        *selfmetrics.Server

	mu    sync.Mutex
	moved uint64    // batches that left the queue, at the last look
	since time.Time // when the queue was last seen empty or moving
}

var refusedDesc = prometheus.NewDesc("meterkit_agent_refused",
	"1 while a publisher's configuration refuses this agent (agent.Refused), else 0", nil, nil)

// New returns a server for a's figures. It serves once Listen and Run are
// called.
func New(a *agent.Agent, opts ...Option) *Server {
	c := config{staleAfter: 3*agent.DefaultBatchAge + agent.DefaultSendTimeout}
	for _, o := range opts {
		o(&c)
	}
	s := &Server{a: a, staleAfter: c.staleAfter, since: time.Now()}
	cs := append([]prometheus.Collector{
		selfmetrics.Single("meterkit_agent_", agent.Stats{}, help, func() any { return a.Stats() }),
		selfmetrics.Func(func(ch chan<- prometheus.Metric) {
			v := 0.0
			if a.Refused() != nil {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.GaugeValue, v)
		}, refusedDesc),
	}, c.extra...)
	s.reg = selfmetrics.NewRegistry(cs...)
	return s
}

func help(key string) string { return fmt.Sprintf("%s of the agent stats line (agent.Stats)", key) }

// Registry returns the server's registry, for more collectors.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Handler returns the handler of /metrics, /healthz and /readyz.
func (s *Server) Handler() http.Handler { return selfmetrics.Handler(s.reg, s.Ready) }

// Ready returns nil when the agent is ready: nothing is queued, or a batch
// left the queue within the stale time, and no publisher refuses the
// agent. Otherwise it returns why not.
func (s *Server) Ready() error {
	if err := s.a.Refused(); err != nil {
		return fmt.Errorf("agenthttp: refused by the publisher: %w", err)
	}
	st, stuck := s.look(time.Now())
	if st.Queued > 0 && stuck > s.staleAfter {
		return fmt.Errorf("agenthttp: %d batches queued and none left the queue for %v (limit %v)",
			st.Queued, stuck.Round(time.Second), s.staleAfter)
	}
	return nil
}

// look reads the agent's stats and returns them with how long batches have
// stayed queued with none leaving the queue (0 when nothing is queued).
func (s *Server) look(now time.Time) (agent.Stats, time.Duration) {
	st := s.a.Stats()
	moved := st.Acked + st.Dropped + st.Rejected + st.Failed
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.Queued == 0 || moved != s.moved {
		s.since = now
	}
	s.moved = moved
	return st, now.Sub(s.since)
}

// Listen listens on addr (host:port); Run serves on it. An address in use
// is an error here, before anything runs.
func (s *Server) Listen(addr string) error {
	srv, err := selfmetrics.Listen(addr, s.Handler())
	if err != nil {
		return fmt.Errorf("agenthttp: %w", err)
	}
	s.srv = srv
	return nil
}

// Addr returns the address listened on, nil before Listen.
func (s *Server) Addr() net.Addr {
	if s.srv == nil {
		return nil
	}
	return s.srv.Addr()
}

// Run watches the queue (once a second, so that Ready knows since when
// batches wait) and, after Listen, serves, until ctx ends. It returns nil
// then, or the server's error.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				s.look(now)
			}
		}
	})
	if s.srv == nil {
		<-ctx.Done()
		return nil
	}
	if err := s.srv.Serve(ctx); err != nil {
		return fmt.Errorf("agenthttp: %w", err)
	}
	return nil
}

// Close closes the listener of a server that Run does not serve.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

// Notify sends state ("READY=1", "RELOADING=1", "STOPPING=1") to systemd
// at $NOTIFY_SOCKET, for a Type=notify unit. Without $NOTIFY_SOCKET it
// does nothing and returns false.
func Notify(state string) (bool, error) {
	ok, err := selfmetrics.Notify(state)
	if err != nil {
		return false, fmt.Errorf("agenthttp: notify: %w", err)
	}
	return ok, nil
}
