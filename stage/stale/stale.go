// Package stale is the "stale" stage: Opticon's stale hosts. A host (an
// agent of a tenant) whose data stops arriving for `after` is reported once
// as stale, and as fresh again when its data returns.
//
//	# in the publisher's -stages file:
//	- type: stale
//	  after: 5m          # required: three or more collection intervals
//
// It runs in the publisher only: it needs to know which agent sent each
// batch, the [stage.Origin] the publisher puts in the context of Process.
// Without an origin (in an agent, or a composer that gives none) the stage
// passes its input through and counts it as dropped (Stats.Dropped), and
// reports nothing. A host is the pair (tenant, agent id) of the envelope;
// it is seen when a batch of at least one measurement from it reaches
// Process, by arrival time (the stage's clock, not the measurements' time:
// a host whose agent replays an old spool is alive). A batch of a
// publisher's own identity (agent "publisher/<id>", the output of stages
// made without input) is no host: it comes only when there is output, so
// its silence means nothing; the stage passes it through and records
// nothing.
//
// Process passes its input through unchanged, in order, and appends after
// it a change to ok when the batch comes from a host reported stale. Tick,
// which the publisher calls now and then, appends a change to stale for each
// host silent for `after` or more. The changes have the shape of the changes
// the levels stage reports:
//
//	| field  | stale                                                         |
//	|--------|---------------------------------------------------------------|
//	| input  | unchanged, in order (Process)                                 |
//	| name   | meterkit.state.change (meter.StateChange)                     |
//	| kind   | gauge                                                         |
//	| unit   | none                                                          |
//	| value  | the new level: 4 (meter.LevelStale) when the host goes stale, |
//	|        | 0 (meter.LevelOK) when it comes back                          |
//	| time   | going stale: the time given to Tick; back: the arrival time   |
//	| host   | the agent's id                                                |
//	| ids    | ResourceID the agent's id; no ProjectID, no UserID            |
//	| labels | meter = meterkit.agent (StateMeter), from and to (level       |
//	|        | names: ok -> stale, stale -> ok), and tenant = the tenant     |
//	|        | when the envelope has one                                     |
//
// The tenant is a label, not the ProjectID: a meterkit tenant is whoever
// holds a key, not an OpenStack project, and the Ceilometer and Gnocchi
// sinks give ProjectID to the store as the owner of the resource. Each
// host's changes make one series (meter, host and resource are the agent's
// id): two tenants with agents of the same id are told apart by the label.
//
// Changes to stale are appended in order of tenant, then agent id, so that
// the same state and time give the same output.
//
// # Restarts and several publishers
//
// After the stage is made (a publisher start), nothing is reported stale
// until one full `after` has passed, whether or not state was restored: the
// agents need that long to reach a publisher that was down. The state (the
// last arrival of each host and which hosts were reported stale) is given
// out and back with Checkpoint and Restore (a stage.Checkpointer), so that
// a restarted publisher neither reports a host stale twice nor misses its
// return. The stage needs each agent's batches in order (OrderSensitive).
//
// With several publishers, each reports what it sees: an agent that failed
// over to another publisher looks stale to the one it left, and fresh to
// none. At scale, or with failover, prefer the store's own way: the Riemann
// sink gives each event a TTL (riemann.WithTTL, ttl=), and Riemann expires a
// host's events when they stop, wherever they came from.
//
// # Memory
//
// At most max_series hosts (the setting the other stateful stages have) are
// held (default 100000; the batches of further hosts pass with no record,
// counted as dropped), and a host silent for
// forget_after (default 7 days, and more than `after`) is forgotten, after
// it was reported stale: if it comes back it is a new host, and no change
// to ok is reported for it (the store's last word for it stays stale, or
// its TTL ran out).
package stale

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

func init() { stage.Register("stale", Open) }

// StateMeter is the value of the label meter of the changes the stage
// reports: the series whose level changes is the agent itself.
const StateMeter = "meterkit.agent"

// OwnAgentPrefix begins the agent id of a publisher's own batches
// ("publisher/<id>"): the stage never takes them for a host.
const OwnAgentPrefix = "publisher/"

// TenantLabel is the label holding the host's tenant, when it has one.
const TenantLabel = "tenant"

// Defaults of the memory bounds.
const (
	DefaultMaxSeries   = 100000
	DefaultForgetAfter = 7 * 24 * time.Hour
)

// Config is the stage's settings.
type Config struct {
	// After is how long a host may send nothing before it is reported
	// stale; required.
	After meter.Duration `json:"after"`
	// MaxSeries bounds the hosts held; DefaultMaxSeries when 0.
	MaxSeries int `json:"max_series,omitempty"`
	// ForgetAfter is how long a host may send nothing before it is
	// forgotten; DefaultForgetAfter when 0, and more than After.
	ForgetAfter meter.Duration `json:"forget_after,omitempty"`
}

// Option changes how the stage is made.
type Option func(*Stale)

// WithClock gives the stage its clock, which tells the arrival time of
// each batch; time.Now by default. Tick uses the time it is given.
func WithClock(now func() time.Time) Option {
	return func(s *Stale) {
		if now != nil {
			s.clock = now
		}
	}
}

// Stale is the stage.
type Stale struct {
	stage.Counters
	after       int64 // ns
	forgetAfter int64 // ns
	maxSeries   int
	clock       func() time.Time
	start       int64 // unix ns of the stage's making: no stale before start+after

	hosts map[key]*host
	stale []*host // Tick's scratch
}

type key struct{ tenant, agent string }

type host struct {
	key
	last          int64 // unix ns of the latest arrival
	stale         bool  // reported stale, not back since
	toStale, toOK []meter.Label
}

// New makes the stage.
func New(c Config, opts ...Option) (*Stale, error) {
	if c.After <= 0 {
		return nil, fmt.Errorf("stale: after: %v; required, a duration above 0 such as 5m (three or more collection intervals)", time.Duration(c.After))
	}
	s := &Stale{after: int64(c.After), forgetAfter: int64(c.ForgetAfter), maxSeries: c.MaxSeries, clock: time.Now, hosts: map[key]*host{}}
	switch {
	case c.MaxSeries < 0:
		return nil, fmt.Errorf("stale: max_series: %d; want 0 (the default, %d) or more", c.MaxSeries, DefaultMaxSeries)
	case c.MaxSeries == 0:
		s.maxSeries = DefaultMaxSeries
	}
	switch {
	case c.ForgetAfter < 0:
		return nil, fmt.Errorf("stale: forget_after: %v; want 0 (the default, %v) or more", time.Duration(c.ForgetAfter), DefaultForgetAfter)
	case c.ForgetAfter == 0:
		s.forgetAfter = max(int64(DefaultForgetAfter), 2*s.after)
	case c.ForgetAfter <= c.After:
		return nil, fmt.Errorf("stale: forget_after (%v) must be more than after (%v)", time.Duration(c.ForgetAfter), time.Duration(c.After))
	}
	for _, o := range opts {
		o(s)
	}
	s.start = s.clock().UnixNano()
	return s, nil
}

// Open makes the stage from its settings, for the registry. The stage
// needs the publisher's [stage.Origin]: see the package doc.
func Open(cfg meter.Config) (stage.Stage, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("stale: %w", err)
	}
	return New(c)
}

// OrderSensitive returns true: the stage wants each agent's batches in
// sequence order.
func (s *Stale) OrderSensitive() bool { return true }

// Process passes in through, notes the arrival of its host, and appends a
// change to ok if that host was reported stale.
func (s *Stale) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return out, err
	}
	n := len(out)
	out = append(out, in...)
	o, ok := stage.OriginFrom(ctx)
	if !ok {
		s.Count(stage.Stats{In: uint64(len(in)), Out: uint64(len(in)), Dropped: uint64(len(in))})
		return out, nil
	}
	if len(in) == 0 || strings.HasPrefix(o.Agent, OwnAgentPrefix) {
		s.Count(stage.Stats{In: uint64(len(in)), Out: uint64(len(in))})
		return out, nil
	}
	var dropped uint64
	k := key{o.Tenant, o.Agent}
	h := s.hosts[k]
	if h == nil && len(s.hosts) >= s.maxSeries {
		dropped = uint64(len(in))
	} else {
		if h == nil {
			// Its own copies: the origin's strings may share the memory
			// of the whole frame they came in (transport.Decoder), which
			// a host remembered for hours would keep.
			k = key{strings.Clone(k.tenant), strings.Clone(k.agent)}
			h = &host{key: k}
			s.hosts[k] = h
		}
		now := s.clock()
		h.last = max(h.last, now.UnixNano())
		if h.stale {
			h.stale = false
			out = append(out, h.change(meter.LevelStale, meter.LevelOK, now))
		}
	}
	s.Count(stage.Stats{In: uint64(len(in)), Out: uint64(len(out) - n), Dropped: dropped})
	s.SetSeries(len(s.hosts))
	return out, nil
}

// Tick appends a change to stale for each host silent for `after` at now,
// once, and forgets the hosts silent for forget_after. Before one full
// `after` has passed since the stage was made, it reports nothing.
func (s *Stale) Tick(ctx context.Context, now time.Time, out []meter.Measurement) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return out, err
	}
	t := now.UnixNano()
	if t-s.start < s.after {
		return out, nil
	}
	s.stale = s.stale[:0]
	for k, h := range s.hosts {
		silent := t - h.last
		if silent >= s.after && !h.stale {
			h.stale = true
			s.stale = append(s.stale, h)
		}
		if silent >= s.forgetAfter {
			delete(s.hosts, k)
		}
	}
	slices.SortFunc(s.stale, func(a, b *host) int {
		return cmp.Or(cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.agent, b.agent))
	})
	n := len(out)
	for _, h := range s.stale {
		out = append(out, h.change(meter.LevelOK, meter.LevelStale, now))
	}
	clear(s.stale)
	s.Count(stage.Stats{Out: uint64(len(out) - n)})
	s.SetSeries(len(s.hosts))
	return out, nil
}

// change is the host's change from -> to at t. Its label slices are made
// once per host and never changed after.
func (h *host) change(from, to meter.Level, t time.Time) meter.Measurement {
	ls := &h.toOK
	if to == meter.LevelStale {
		ls = &h.toStale
	}
	if *ls == nil {
		l := make([]meter.Label, 0, 4)
		l = append(l, meter.Label{Key: meter.StateChangeMeter, Value: StateMeter},
			meter.Label{Key: meter.StateChangeFrom, Value: from.String()},
			meter.Label{Key: meter.StateChangeTo, Value: to.String()})
		if h.tenant != "" {
			l = append(l, meter.Label{Key: TenantLabel, Value: h.tenant})
		}
		*ls = l
	}
	return meter.Measurement{Name: meter.StateChange, Kind: meter.Gauge, Value: float64(to), Time: t,
		Host: h.agent, ResourceID: h.agent, Labels: *ls}
}

// state is the checkpoint's form: the hosts sorted, for the same state to
// give the same bytes.
type state struct {
	Version int         `json:"version"`
	Hosts   []hostState `json:"hosts"`
}

type hostState struct {
	Tenant string `json:"tenant,omitempty"`
	Agent  string `json:"agent"`
	Last   int64  `json:"last"` // unix ns
	Stale  bool   `json:"stale,omitempty"`
}

// Checkpoint returns the last arrival of every host held and whether it was
// reported stale, as JSON.
func (s *Stale) Checkpoint() ([]byte, error) {
	st := state{Version: 1, Hosts: make([]hostState, 0, len(s.hosts))}
	for _, h := range s.hosts {
		st.Hosts = append(st.Hosts, hostState{h.tenant, h.agent, h.last, h.stale})
	}
	slices.SortFunc(st.Hosts, func(a, b hostState) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Agent, b.Agent))
	})
	return json.Marshal(st)
}

// Restore replaces the hosts held with those of a checkpoint. Past
// max_series it keeps those that arrived last. It does not move the start
// of the stage: nothing is reported stale until `after` has passed since
// the stage was made.
func (s *Stale) Restore(b []byte) error {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("stale: restore: %w", err)
	}
	if st.Version != 1 {
		return fmt.Errorf("stale: restore: state version %d; this stage reads version 1", st.Version)
	}
	hosts := make(map[key]*host, min(len(st.Hosts), s.maxSeries))
	for i, hs := range st.Hosts {
		k := key{hs.Tenant, hs.Agent}
		if hs.Agent == "" {
			return fmt.Errorf("stale: restore: host %d: no agent id", i)
		}
		if _, dup := hosts[k]; dup {
			return fmt.Errorf("stale: restore: host %d (%q of tenant %q) given twice", i, hs.Agent, hs.Tenant)
		}
		hosts[k] = &host{key: k, last: hs.Last, stale: hs.Stale}
	}
	if len(hosts) > s.maxSeries {
		all := make([]*host, 0, len(hosts))
		for _, h := range hosts {
			all = append(all, h)
		}
		slices.SortFunc(all, func(a, b *host) int {
			return cmp.Or(cmp.Compare(b.last, a.last), cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.agent, b.agent))
		})
		for _, h := range all[s.maxSeries:] {
			delete(hosts, h.key)
		}
		s.Count(stage.Stats{Dropped: uint64(len(all) - s.maxSeries)})
	}
	s.hosts = hosts
	s.SetSeries(len(s.hosts))
	return nil
}

var _ interface {
	stage.Stage
	stage.Ticker
	stage.Checkpointer
	stage.Restorer
	stage.StatsReporter
	stage.OrderSensitive
} = (*Stale)(nil)
