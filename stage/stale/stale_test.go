package stale_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/stagetest"
	"github.com/meterkit/meter/stage/stale"
)

// clock is a clock the test sets.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newStale(t *testing.T, c stale.Config, clk *clock) *stale.Stale {
	t.Helper()
	s, err := stale.New(c, stale.WithClock(clk.now))
	require.NoError(t, err)
	return s
}

func from(tenant, agent string, seq uint64) context.Context {
	return stage.WithOrigin(context.Background(), stage.Origin{Tenant: tenant, Agent: agent, Seq: seq})
}

func batch(host string, at time.Time) []meter.Measurement {
	return []meter.Measurement{
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12, Time: at, Host: host, ResourceID: "total"},
		{Name: "memory.used", Kind: meter.Gauge, Unit: "B", Value: 1 << 30, Time: at, Host: host, ResourceID: "memory"},
	}
}

func process(t *testing.T, s *stale.Stale, ctx context.Context, in []meter.Measurement) []meter.Measurement {
	t.Helper()
	out, err := s.Process(ctx, in, nil)
	require.NoError(t, err)
	require.Equal(t, in, out[:len(in)], "the input passes unchanged, first")
	return out[len(in):]
}

func tick(t *testing.T, s *stale.Stale, now time.Time) []meter.Measurement {
	t.Helper()
	out, err := s.Tick(context.Background(), now, nil)
	require.NoError(t, err)
	for _, m := range out {
		require.NoError(t, m.Validate())
	}
	return out
}

// wantChange is the change of the agent of tenant from -> to at time at.
func wantChange(tenant, agent string, from, to meter.Level, at time.Time) meter.Measurement {
	ls := []meter.Label{{Key: "meter", Value: "meterkit.agent"}, {Key: "from", Value: from.String()}, {Key: "to", Value: to.String()}}
	if tenant != "" {
		ls = append(ls, meter.Label{Key: "tenant", Value: tenant})
	}
	return meter.Measurement{Name: "meterkit.state.change", Kind: meter.Gauge, Value: float64(to), Time: at,
		Host: agent, ResourceID: agent, Labels: ls}
}

func TestStaleReportsOnceThenFreshWhenDataReturns(t *testing.T) {
	clk := &clock{t0}
	s := newStale(t, stale.Config{After: meter.Duration(5 * time.Minute)}, clk)

	clk.t = t0.Add(time.Minute)
	require.Empty(t, process(t, s, from("acme", "web1", 1), batch("web1", t0)))
	require.Empty(t, process(t, s, from("", "db1", 7), batch("db1", t0)))
	require.Empty(t, tick(t, s, t0.Add(4*time.Minute)))

	clk.t = t0.Add(5 * time.Minute)
	require.Empty(t, process(t, s, from("acme", "web1", 2), batch("web1", t0.Add(4*time.Minute))))
	// db1 has been silent 5 min since its arrival at 1 min, web1 1 min.
	require.Empty(t, tick(t, s, t0.Add(6*time.Minute-time.Nanosecond)), "silent 1 ns short of after")
	require.Equal(t, []meter.Measurement{wantChange("", "db1", meter.LevelOK, meter.LevelStale, t0.Add(6*time.Minute))},
		tick(t, s, t0.Add(6*time.Minute)))
	require.Empty(t, tick(t, s, t0.Add(7*time.Minute)), "reported once")

	// Both silent now: web1 goes stale too (db1 is not reported again).
	require.Equal(t, []meter.Measurement{wantChange("acme", "web1", meter.LevelOK, meter.LevelStale, t0.Add(10*time.Minute))},
		tick(t, s, t0.Add(10*time.Minute)))

	// db1 is back: fresh, at its arrival time, once.
	clk.t = t0.Add(11 * time.Minute)
	require.Equal(t, []meter.Measurement{wantChange("", "db1", meter.LevelStale, meter.LevelOK, t0.Add(11*time.Minute))},
		process(t, s, from("", "db1", 9), batch("db1", t0.Add(2*time.Minute))))
	require.Empty(t, process(t, s, from("", "db1", 10), batch("db1", t0.Add(3*time.Minute))))
	require.Empty(t, tick(t, s, t0.Add(12*time.Minute)))

	// An empty batch is no data: web1 stays stale.
	clk.t = t0.Add(15 * time.Minute)
	require.Empty(t, process(t, s, from("acme", "web1", 3), nil))
	require.Equal(t, []meter.Measurement{wantChange("", "db1", meter.LevelOK, meter.LevelStale, t0.Add(16*time.Minute))},
		tick(t, s, t0.Add(16*time.Minute)))
	require.Empty(t, tick(t, s, t0.Add(17*time.Minute)))

	st := s.Stats()
	require.Equal(t, stage.Stats{In: 10, Out: 10 + 4, Series: 2}, st)
}

func TestStaleSortsChangesAndTellsTenantsApart(t *testing.T) {
	clk := &clock{t0}
	s := newStale(t, stale.Config{After: meter.Duration(time.Minute)}, clk)
	for i, o := range []stage.Origin{{Tenant: "b", Agent: "x"}, {Tenant: "a", Agent: "y"}, {Tenant: "a", Agent: "x"}, {Agent: "x"}} {
		process(t, s, stage.WithOrigin(context.Background(), o), batch("h"+string(rune('0'+i)), t0))
	}
	require.Equal(t, []meter.Measurement{
		wantChange("", "x", meter.LevelOK, meter.LevelStale, t0.Add(time.Minute)),
		wantChange("a", "x", meter.LevelOK, meter.LevelStale, t0.Add(time.Minute)),
		wantChange("a", "y", meter.LevelOK, meter.LevelStale, t0.Add(time.Minute)),
		wantChange("b", "x", meter.LevelOK, meter.LevelStale, t0.Add(time.Minute)),
	}, tick(t, s, t0.Add(time.Minute)))
}

func TestStaleAfterRestartWaitsOneFullAfter(t *testing.T) {
	after := 5 * time.Minute
	clk := &clock{t0}
	s := newStale(t, stale.Config{After: meter.Duration(after)}, clk)
	process(t, s, from("acme", "web1", 1), batch("web1", t0))
	process(t, s, from("acme", "web2", 1), batch("web2", t0))
	process(t, s, from("acme", "web3", 1), batch("web3", t0))
	require.Len(t, tick(t, s, t0.Add(after)), 3)
	clk.t = t0.Add(after + time.Second)
	require.Len(t, process(t, s, from("acme", "web3", 2), batch("web3", t0)), 1, "web3 is back")
	state, err := s.Checkpoint()
	require.NoError(t, err)

	// The publisher restarts an hour later: web1 and web2 were reported
	// stale, web3 was fresh, and all three have been silent since.
	restart := t0.Add(time.Hour)
	for _, restore := range []bool{true, false} {
		clk.t = restart
		r := newStale(t, stale.Config{After: meter.Duration(after)}, clk)
		if restore {
			require.NoError(t, r.Restore(state))
			require.Equal(t, uint64(3), r.Stats().Series)
		}
		clk.t = restart.Add(time.Minute)
		process(t, r, from("acme", "web4", 1), batch("web4", restart))
		require.Empty(t, tick(t, r, restart.Add(after-time.Nanosecond)), "restored %v: nothing before one full after since the start", restore)
		got := tick(t, r, restart.Add(after))
		if restore {
			// web3 was fresh and has been silent for over an hour: stale now;
			// web1 and web2 were reported already.
			require.Equal(t, []meter.Measurement{wantChange("acme", "web3", meter.LevelOK, meter.LevelStale, restart.Add(after))}, got)
			clk.t = restart.Add(after + time.Minute)
			require.Equal(t, []meter.Measurement{wantChange("acme", "web1", meter.LevelStale, meter.LevelOK, clk.t)},
				process(t, r, from("acme", "web1", 5), batch("web1", clk.t)), "a host reported stale before the restart comes back")
		} else {
			require.Empty(t, got, "without state, only hosts seen since the start count, and web4 arrived 1 min after it")
		}
		require.Len(t, tick(t, r, restart.Add(after+time.Minute)), 1, "web4, silent for after")
	}
}

func TestStaleWithoutOriginPassesThroughAndCounts(t *testing.T) {
	clk := &clock{t0}
	s := newStale(t, stale.Config{After: meter.Duration(time.Minute)}, clk)
	in := batch("web1", t0)
	out, err := s.Process(context.Background(), in, nil)
	require.NoError(t, err)
	require.Equal(t, in, out)
	require.Empty(t, tick(t, s, t0.Add(time.Hour)))
	require.Equal(t, stage.Stats{In: 2, Out: 2, Dropped: 2}, s.Stats())
}

func TestStaleBoundsItsHosts(t *testing.T) {
	clk := &clock{t0}
	s := newStale(t, stale.Config{After: meter.Duration(time.Minute), MaxSeries: 2, ForgetAfter: meter.Duration(time.Hour)}, clk)
	process(t, s, from("", "a", 1), batch("a", t0))
	process(t, s, from("", "b", 1), batch("b", t0))
	require.Empty(t, process(t, s, from("", "c", 1), batch("c", t0)), "a third host passes, unrecorded")
	require.Equal(t, stage.Stats{In: 6, Out: 6, Dropped: 2, Series: 2}, s.Stats())

	// b keeps sending; a is reported stale, then forgotten after an hour.
	clk.t = t0.Add(59 * time.Minute)
	process(t, s, from("", "b", 2), batch("b", t0))
	require.Equal(t, []meter.Measurement{wantChange("", "a", meter.LevelOK, meter.LevelStale, t0.Add(2*time.Minute))},
		tick(t, s, t0.Add(2*time.Minute)))
	require.Equal(t, uint64(2), s.Stats().Series)
	require.Equal(t, []meter.Measurement{wantChange("", "b", meter.LevelOK, meter.LevelStale, t0.Add(time.Hour))},
		tick(t, s, t0.Add(time.Hour)))
	require.Equal(t, uint64(1), s.Stats().Series, "a forgotten")
	clk.t = t0.Add(61 * time.Minute)
	require.Empty(t, process(t, s, from("", "c", 2), batch("c", t0)), "c has room now: a new host")
	require.Len(t, process(t, s, from("", "b", 3), batch("b", t0)), 1, "b is back")
	require.Empty(t, process(t, s, from("", "a", 2), batch("a", t0)), "a forgotten: no change to ok")
	require.Equal(t, uint64(2), s.Stats().Series)
	require.Equal(t, uint64(4), s.Stats().Dropped, "a did not fit")

	// A checkpoint of more hosts than max_series keeps those that arrived last.
	big := newStale(t, stale.Config{After: meter.Duration(time.Minute)}, clk)
	for i, h := range []string{"h1", "h2", "h3"} {
		clk.t = t0.Add(time.Duration(i) * time.Second)
		process(t, big, from("", h, 1), batch(h, t0))
	}
	state, err := big.Checkpoint()
	require.NoError(t, err)
	small := newStale(t, stale.Config{After: meter.Duration(time.Minute), MaxSeries: 2}, clk)
	require.NoError(t, small.Restore(state))
	got := tick(t, small, t0.Add(time.Hour))
	require.Len(t, got, 2)
	require.Equal(t, []string{"h2", "h3"}, []string{got[0].Host, got[1].Host})
}

func TestStaleRestoreOfGarbageKeepsTheState(t *testing.T) {
	clk := &clock{t0}
	s := newStale(t, stale.Config{After: meter.Duration(time.Minute)}, clk)
	process(t, s, from("", "a", 1), batch("a", t0))
	before, err := s.Checkpoint()
	require.NoError(t, err)
	for _, bad := range []string{"", "{", `{"version":2,"hosts":[]}`, `{"version":1,"hosts":[{"agent":""}]}`,
		`{"version":1,"hosts":[{"agent":"x"},{"agent":"x"}]}`, `[1,2]`} {
		require.Error(t, s.Restore([]byte(bad)), "%q", bad)
		after, err := s.Checkpoint()
		require.NoError(t, err)
		require.JSONEq(t, string(before), string(after), "after Restore(%q)", bad)
	}
}

func TestStaleConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  string
		want string
	}{
		{`{}`, "stale: after: 0s; required"},
		{`{"after": "-1m"}`, "stale: after: -1m0s; required"},
		{`{"after": "1m", "max_series": -1}`, "stale: max_series: -1"},
		{`{"after": "1m", "forget_after": "-1s"}`, "stale: forget_after: -1s"},
		{`{"after": "1m", "forget_after": "1m"}`, "stale: forget_after (1m0s) must be more than after (1m0s)"},
		{`{"after": "1m", "afer": "1m"}`, `stale: config: json: unknown field "afer"`},
	} {
		_, err := stage.Open("stale", meter.ConfigFromJSON([]byte(c.cfg)))
		require.ErrorContains(t, err, c.want, c.cfg)
	}
	s, err := stage.Open("stale", meter.ConfigFromJSON([]byte(`{"after": "5m"}`)))
	require.NoError(t, err)
	o, ok := stage.As[stage.OrderSensitive](stage.Named("stale", s))
	require.True(t, ok)
	require.True(t, o.OrderSensitive())
	require.Contains(t, stage.Stages(), "stale")
}

func TestStaleConformance(t *testing.T) {
	c, err := meter.ConfigFrom(map[string]any{"after": "1m"})
	require.NoError(t, err)
	stagetest.Run(t, stale.Open, c)
}

func TestStaleIgnoresPublisherBatches(t *testing.T) {
	clk := &clock{t0}
	s := newStale(t, stale.Config{After: meter.Duration(time.Minute)}, clk)
	own := stale.OwnAgentPrefix + "p1"
	require.Empty(t, process(t, s, from("", own, 1), batch(own, t0)), "a publisher's own batch passes, no change")
	require.Equal(t, uint64(0), s.Stats().Series, "it is no host")
	require.Empty(t, tick(t, s, t0.Add(time.Hour)), "so it never goes stale")
}

// A host remembers its tenant and agent in strings of its own: those of a
// decoded envelope are substrings of the whole frame, which a host kept
// for hours would keep in memory. The changes it reports carry them.
func TestStaleKeepsNoFrame(t *testing.T) {
	clk := &clock{t: t0}
	s := newStale(t, stale.Config{After: meter.Duration(time.Minute)}, clk)
	frame := strings.Repeat("x", 64<<10) + "acmeweb-01" // as transport.Decoder leaves the strings of an envelope
	tenant, agent := frame[64<<10:64<<10+4], frame[64<<10+4:]
	process(t, s, from(tenant, agent, 1), batch(agent, t0))
	changes := tick(t, s, t0.Add(2*time.Minute))
	require.Len(t, changes, 1)
	ch := changes[0]
	require.Equal(t, "web-01", ch.Host)
	v, _ := ch.Label(stale.TenantLabel)
	require.Equal(t, "acme", v)
	lo, hi := uintptr(unsafe.Pointer(unsafe.StringData(frame))), uintptr(unsafe.Pointer(unsafe.StringData(frame)))+uintptr(len(frame))
	for _, str := range []string{ch.Host, ch.ResourceID, v} {
		p := uintptr(unsafe.Pointer(unsafe.StringData(str)))
		require.False(t, p >= lo && p < hi, "%q shares the frame's memory", str)
	}
}
