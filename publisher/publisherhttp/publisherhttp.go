package publisherhttp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meterkit/meter/internal/selfmetrics"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/stage"
)

// Option configures New.
type Option func(*config)

type config struct {
	extra []prometheus.Collector
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

// Server serves a publisher's /metrics, /healthz and /readyz.
type Server struct {
	p   *publisher.Publisher
	reg *prometheus.Registry
	srv *selfmetrics.Server
}

var (
	lastSuccessDesc = prometheus.NewDesc("meterkit_sink_last_success_timestamp_seconds",
		"when the sink last took a write, in seconds since the epoch (absent before its first)", []string{"sink"}, nil)
	failingDesc = prometheus.NewDesc("meterkit_sink_failing",
		"1 while the sink's last write failed, else 0", []string{"sink"}, nil)
	detachedDesc = prometheus.NewDesc("meterkit_sink_detached",
		"1 for a spool lane whose sink is no longer configured (kept, delivered if the sink comes back), else 0", []string{"sink"}, nil)
)

// New returns a server for p's figures. It serves once Listen and Run are
// called.
func New(p *publisher.Publisher, opts ...Option) *Server {
	var c config
	for _, o := range opts {
		o(&c)
	}
	sinks := selfmetrics.New("meterkit_sink_", publisher.SinkStats{}, "sink",
		func(key string) string { return key + " of one sink (publisher.SinkStats)" },
		func() []selfmetrics.Row {
			ss := p.SinkStats()
			rows := make([]selfmetrics.Row, len(ss))
			for i, s := range ss {
				rows[i] = selfmetrics.Row{Label: s.Name, Stats: s}
			}
			return rows
		})
	sinkState := selfmetrics.Func(func(ch chan<- prometheus.Metric) {
		for _, s := range p.SinkStats() {
			if !s.LastSuccess.IsZero() {
				ch <- prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue,
					float64(s.LastSuccess.UnixNano())/1e9, s.Name)
			}
			v := 0.0
			if s.Failing {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(failingDesc, prometheus.GaugeValue, v, s.Name)
			v = 0
			if s.Detached {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(detachedDesc, prometheus.GaugeValue, v, s.Name)
		}
	}, lastSuccessDesc, failingDesc, detachedDesc)
	cs := append([]prometheus.Collector{
		selfmetrics.Single("meterkit_publisher_", publisher.Stats{},
			func(key string) string { return key + " of the publisher stats line (publisher.Stats)" },
			func() any { return p.Stats() }),
		sinks, sinkState,
		selfmetrics.Stages(func() []stage.StageStats { return p.Stats().Stages }),
	}, c.extra...)
	return &Server{p: p, reg: selfmetrics.NewRegistry(cs...)}
}

// Registry returns the server's registry, for more collectors.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Handler returns the handler of /metrics, /healthz and /readyz.
func (s *Server) Handler() http.Handler { return selfmetrics.Handler(s.reg, s.Ready) }

// Ready returns nil when the publisher receives and every sink's last
// write succeeded or its spool lane is empty; otherwise why not. Without a
// spool a failing sink makes the publisher unready: agents are answered
// "retry" until it recovers.
func (s *Server) Ready() error {
	if !s.p.Serving() {
		return errors.New("publisherhttp: not receiving")
	}
	var errs []error
	for _, st := range s.p.SinkStats() {
		if !st.Failing {
			continue
		}
		if !st.Lane {
			errs = append(errs, fmt.Errorf("publisherhttp: sink %q: its last write failed", st.Name))
		} else if st.PendingBatches > 0 {
			errs = append(errs, fmt.Errorf("publisherhttp: sink %q: its last write failed and %d batches wait in its lane",
				st.Name, st.PendingBatches))
		}
	}
	return errors.Join(errs...)
}

// Listen listens on addr (host:port); Run serves on it. An address in use
// is an error here, before anything runs.
func (s *Server) Listen(addr string) error {
	srv, err := selfmetrics.Listen(addr, s.Handler())
	if err != nil {
		return fmt.Errorf("publisherhttp: %w", err)
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

// Run serves, after Listen, until ctx ends; it returns nil then, or the
// server's error. Without Listen it returns at once.
func (s *Server) Run(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	if err := s.srv.Serve(ctx); err != nil {
		return fmt.Errorf("publisherhttp: %w", err)
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
		return false, fmt.Errorf("publisherhttp: notify: %w", err)
	}
	return ok, nil
}
