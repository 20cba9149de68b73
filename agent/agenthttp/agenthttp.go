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
	"github.com/meterkit/meter/stage"
)

// Option configures New.
type Option func(*config)

type config struct {
	staleAfter time.Duration
	extra      []func() prometheus.Collector // made with the registry
}

// WithStaleAfter sets how old the oldest batch not yet acknowledged
// (agent.Agent.OldestBatch) may be before /readyz answers 503. The default
// is three times agent.DefaultBatchAge plus agent.DefaultSendTimeout; give
// three times the agent's batch age plus its send timeout when they differ.
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
		c.extra = append(c.extra, func() prometheus.Collector { return selfmetrics.Single(prefix, sample, help, read) })
	}
}

// Server serves an agent's /metrics, /healthz and /readyz.
type Server struct {
	a          *agent.Agent
	extra      []func() prometheus.Collector
	regOnce    sync.Once
	reg        *prometheus.Registry
	staleAfter time.Duration
	srv        *selfmetrics.Server
}

// newOldestDesc and newRefusedDesc describe the two gauges that are not
// agent.Stats fields; they are made with the registry, not at init.
func newOldestDesc() *prometheus.Desc {
	return prometheus.NewDesc("meterkit_agent_oldest_batch_age_seconds",
		"age of the oldest batch not yet acknowledged by a publisher (agent.Agent.OldestBatch), 0 when none waits", nil, nil)
}

func newRefusedDesc() *prometheus.Desc {
	return prometheus.NewDesc("meterkit_agent_refused",
		"1 while a publisher's configuration refuses this agent (agent.Refused), else 0", nil, nil)
}

// New returns a server for a's figures. It serves once Listen and Run are
// called.
func New(a *agent.Agent, opts ...Option) *Server {
	c := config{staleAfter: 3*agent.DefaultBatchAge + agent.DefaultSendTimeout}
	for _, o := range opts {
		o(&c)
	}
	return &Server{a: a, staleAfter: c.staleAfter, extra: c.extra}
}

// registry returns the server's registry, made at its first use: with the
// endpoint off none is made (the Go and process collectors' set-up maps
// about 2 MB of the executable).
func (s *Server) registry() *prometheus.Registry {
	s.regOnce.Do(func() {
		a := s.a
		refusedDesc, oldestDesc := newRefusedDesc(), newOldestDesc()
		cs := []prometheus.Collector{
			selfmetrics.Single("meterkit_agent_", agent.Stats{}, help, func() any { return a.Stats() }),
			selfmetrics.Stages(func() []stage.StageStats { return a.Stats().Stages }),
			selfmetrics.Func(func(ch chan<- prometheus.Metric) {
				v := 0.0
				if a.Refused() != nil {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.GaugeValue, v)
			}, refusedDesc),
			selfmetrics.Func(func(ch chan<- prometheus.Metric) {
				ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age(a.OldestBatch(), time.Now()).Seconds())
			}, oldestDesc),
		}
		for _, c := range s.extra {
			cs = append(cs, c())
		}
		s.reg = selfmetrics.NewRegistry(cs...)
	})
	return s.reg
}

func help(key string) string { return fmt.Sprintf("%s of the agent stats line (agent.Stats)", key) }

// Registry returns the server's registry, for more collectors.
func (s *Server) Registry() *prometheus.Registry { return s.registry() }

// Handler returns the handler of /metrics, /healthz and /readyz.
func (s *Server) Handler() http.Handler { return selfmetrics.Handler(s.registry(), s.Ready) }

// Ready returns nil when the agent is ready: no batch waits for a
// publisher's acknowledgement, or the oldest that does is younger than the
// stale time; and no publisher refuses the agent. Otherwise it returns why
// not.
func (s *Server) Ready() error {
	if err := s.a.Refused(); err != nil {
		return fmt.Errorf("agenthttp: refused by the publisher: %w", err)
	}
	if old := age(s.a.OldestBatch(), time.Now()); old > s.staleAfter {
		return fmt.Errorf("agenthttp: the oldest unacknowledged batch is %v old (limit %v); %d batches queued",
			old.Round(time.Millisecond), s.staleAfter, s.a.Stats().Queued)
	}
	return nil
}

// age is how long ago t was; 0 for the zero Time (no batch waits).
func age(t, now time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return max(now.Sub(t), 0)
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

// Run serves, after Listen, until ctx ends (without Listen it only waits
// for ctx). It returns nil then, or the server's error.
func (s *Server) Run(ctx context.Context) error {
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
