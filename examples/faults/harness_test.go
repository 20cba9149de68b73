// Package faults runs the reference agent and publisher binaries as real
// processes over real TCP on 127.0.0.1, injects faults (processes killed
// with SIGKILL, the network cut, the store down) and counts every
// measurement end to end in a Riemann test server: each must arrive exactly
// once. Both binaries run stages (-stages) throughout.
package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/sink/riemann/riemanntest"
)

// binDir holds the agent and publisher binaries, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "meterkit-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	return m.Run()
}

var (
	buildOnce sync.Once
	buildErr  error
)

// binaries builds the reference agent and publisher (once per test binary)
// and returns their paths.
func binaries(t *testing.T) (agentBin, publisherBin string) {
	t.Helper()
	buildOnce.Do(func() {
		for _, name := range []string{"agent", "publisher"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, name),
				"github.com/meterkit/meter/examples/"+name).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", name, err, out)
				return
			}
		}
	})
	require.NoError(t, buildErr)
	return filepath.Join(binDir, "agent"), filepath.Join(binDir, "publisher")
}

// logBuf keeps a process's output.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// proc is one run of a binary.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuf
	done chan struct{}
	err  error // of Wait, once done is closed
}

// harness is one test's world: the store, the processes it started, and
// their logs, printed when the test fails.
type harness struct {
	t         *testing.T
	agentBin  string
	pubBin    string
	store     *riemanntest.Server
	dir       string
	mu        sync.Mutex
	procs     []*proc
	started   time.Time
	agentID   string
	agentConf map[string]string // run -> config file
	// Stage files of the agents and the publishers (-stages): the agent
	// renames synthetic.seq and doubles it, the publisher undoes both, so
	// the store counts synthetic.seq with its values only when both ran.
	agentStages, pubStages string
	kills                  []int // the store's event count when each killed process was dead
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	agentBin, pubBin := binaries(t)
	h := &harness{t: t, agentBin: agentBin, pubBin: pubBin, store: riemanntest.NewServer(t, riemanntest.WithExpiry()),
		dir: t.TempDir(), started: time.Now(), agentID: "faults-" + strings.ReplaceAll(t.Name(), "/", "-"),
		agentConf: map[string]string{}}
	t.Cleanup(h.cleanup)
	h.agentStages = filepath.Join(h.dir, "agent-stages.yaml")
	require.NoError(t, os.WriteFile(h.agentStages, []byte(agentStages), 0o600))
	h.pubStages = filepath.Join(h.dir, "publisher-stages.yaml")
	require.NoError(t, os.WriteFile(h.pubStages, []byte(publisherStages), 0o600))
	return h
}

// The stages every run goes through. Each keeps every measurement the
// harness counts, and changes it so that only the other side's stages
// make it countable again: a side that skipped its stages shows as loss.
// Stateful stages run too, their state in the spools: levels in the agent
// (its changes selected away at once, so that the agent sends what it
// collected), rate and delta in the agent over a cumulative made of each
// slot's numbers, before levels, whose level label would start a new
// series (their outputs are other meters, which the counts leave out and
// derivedOnce checks: a collection's 600 measurements are six batches,
// stored in one spool transaction with the stages' state), and
// levels, aggregate and stale in the publisher (its windows
// are counted apart, by TestPublisherWithAggregateKilled; its changes,
// as an agent fails over or a publisher restarts, are other meters, which
// the counts leave out).
const (
	agentStages = `
- type: select
  meters: ["synthetic.*", "!other.*"]
- type: unit
  meters: ["synthetic.seq"]
  factor: 2
  rename: {"synthetic.seq": "synthetic.staged"}
- type: arithmetic
  expr: "$(synthetic.staged)"
  as: synthetic.cum
  kind: cumulative
- type: rate
  meters: ["synthetic.cum"]
  as: synthetic.rate
- type: delta
  meters: ["synthetic.cum"]
  as: synthetic.delta
- type: levels
  meters: ["synthetic.staged"]
  warning: 2000
- type: select
  name: no-changes
  meters: ["synthetic.*", "!synthetic.cum"]
`
	publisherStages = `
- type: select
  meters: ["synthetic.staged", "synthetic.rate", "synthetic.delta"]
- type: unit
  meters: ["synthetic.staged"]
  factor: 0.5
  rename: {"synthetic.staged": "synthetic.seq"}
- type: levels
  meters: ["synthetic.seq"]
  warning: 3000
- type: aggregate
  meters: ["synthetic.seq"]
  window: 1s
  lateness: 5s
  functions: [sum, count]
- type: stale
  after: 3s
`
)

func (h *harness) cleanup() {
	h.mu.Lock()
	procs := slices.Clone(h.procs)
	h.mu.Unlock()
	for _, p := range procs {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if h.t.Failed() {
		for _, p := range procs {
			h.t.Logf("---- %s (%v) output:\n%s", p.name, p.err, tail(p.out.String(), 150))
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return fmt.Sprintf("[%d lines left out]\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], "\n"))
}

func (h *harness) start(name, bin string, args ...string) *proc {
	h.t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &logBuf{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(h.t, p.cmd.Start(), "start %s", name)
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	h.t.Logf("%6.2fs start %s (pid %d)", time.Since(h.started).Seconds(), name, p.cmd.Process.Pid)
	return p
}

// startPublisher starts a publisher listening on port, spooling in spoolDir,
// writing to the harness's store with receipts, running the publisher stages.
// Its id is its spool's name: a restart on the same spool is the same
// publisher.
func (h *harness) startPublisher(name string, port int, spoolDir string) *proc {
	h.t.Helper()
	return h.start(name, h.pubBin, "-id", filepath.Base(spoolDir), "-listen", fmt.Sprintf("tcp://127.0.0.1:%d", port),
		"-spool", spoolDir, "-sink", "riemann://127.0.0.1:"+h.store.Port()+"?receipts=10m", "-stages", h.pubStages)
}

// startAgent starts an agent running the synthetic driver (200 numbered
// measurements every 150 ms, about 1,300 a second, which the agent's
// stages make about 4,000 with their rates and deltas: what the Riemann
// test server takes under -race on a busy CI machine with room to catch
// up) labelled run, sending to the publishers on ports, spooling in
// spoolDir, running the agent stages.
func (h *harness) startAgent(name, run, spoolDir string, ports ...int) *proc {
	h.t.Helper()
	conf, ok := h.agentConf[run]
	if !ok {
		b, err := json.Marshal(map[string]any{"synthetic": map[string]any{"per_collection": 200, "run": run}})
		require.NoError(h.t, err)
		conf = filepath.Join(h.dir, "agent-"+run+".json")
		require.NoError(h.t, os.WriteFile(conf, b, 0o600))
		h.agentConf[run] = conf
	}
	addrs := make([]string, len(ports))
	for i, p := range ports {
		addrs[i] = fmt.Sprintf("tcp://127.0.0.1:%d", p)
	}
	return h.start(name, h.agentBin, "-connect", strings.Join(addrs, ","), "-id", h.agentID,
		"-drivers", "synthetic", "-config", conf, "-interval", "150ms", "-batch", "100", "-batch-age", "50ms",
		"-spool", spoolDir, "-stages", h.agentStages)
}

// now is the time since the test started, for logs.
func (h *harness) now() string { return fmt.Sprintf("%6.2fs", time.Since(h.started).Seconds()) }

// kill sends SIGKILL and waits for the process to end.
func (h *harness) kill(p *proc) {
	h.t.Helper()
	require.NoError(h.t, p.cmd.Process.Signal(syscall.SIGKILL))
	h.wait(p, 10*time.Second)
	h.kills = append(h.kills, h.store.Count())
	h.t.Logf("%s kill -9 %s (store holds %d events)", h.now(), p.name, h.store.Count())
}

// stop sends SIGTERM and waits for a clean exit.
func (h *harness) stop(p *proc) {
	h.t.Helper()
	require.NoError(h.t, p.cmd.Process.Signal(syscall.SIGTERM))
	h.wait(p, 30*time.Second)
	require.NoError(h.t, p.err, "%s exits cleanly on SIGTERM", p.name)
	h.t.Logf("%s stopped %s", h.now(), p.name)
}

func (h *harness) wait(p *proc, d time.Duration) {
	h.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		h.t.Fatalf("%s did not exit within %v", p.name, d)
	}
}

// sleep waits d; named so that the timeline of a scenario reads plainly.
func sleep(d time.Duration) { time.Sleep(d) }

var (
	leftoverRE = regexp.MustCompile(`spool holds batches from an earlier run.*\bmeasurements=(\d+)`)
	statRE     = regexp.MustCompile(`\b(\w+):(\d+)\b`)
	spooledRE  = regexp.MustCompile(`spool holds unacknowledged batches from an earlier run.*\bmeasurements=(\d+)`)
)

// stats parses the last `stats="{...}"` line a stopped process logged.
func stats(t *testing.T, p *proc) map[string]uint64 {
	t.Helper()
	out := p.out.String()
	i := strings.LastIndex(out, `stats="{`)
	require.GreaterOrEqual(t, i, 0, "%s logged no final stats", p.name)
	line, _, _ := strings.Cut(out[i:], "\n")
	m := map[string]uint64{}
	for _, kv := range statRE.FindAllStringSubmatch(line, -1) {
		v, err := strconv.ParseUint(kv[2], 10, 64)
		require.NoError(t, err)
		m[kv[1]] = v
	}
	return m
}

// agentProduced checks that a stopped agent drained cleanly (everything it
// collected and its stages made was acknowledged, nothing dropped) and
// returns how many measurements it produced.
func agentProduced(t *testing.T, p *proc) uint64 {
	t.Helper()
	st := stats(t, p)
	require.Contains(t, p.out.String(), "everything collected was acknowledged", "%s drained", p.name)
	// A restarted agent also sends what an earlier run left in its spool.
	carried := uint64(0)
	if m := spooledRE.FindStringSubmatch(p.out.String()); m != nil {
		n, err := strconv.ParseUint(m[1], 10, 64)
		require.NoError(t, err)
		carried = n
	}
	require.Equal(t, st["StagedOut"]+carried, st["AckedMeasurements"], "%s: stats %v", p.name, st)
	require.Zero(t, st["Dropped"]+st["Rejected"]+st["Unsent"]+st["Invalid"], "%s: stats %v", p.name, st)
	require.Equal(t, st["Added"], st["Staged"], "%s: every collection went through the stages: stats %v", p.name, st)
	require.Zero(t, st["StageErrors"], "%s: stats %v", p.name, st)
	return st["Added"]
}

// tally is what the store received of one run.
type tally struct {
	received   int // events of the run
	distinct   int // distinct values among them
	lost       int // values in 1..want never received
	duplicated int // events received more than once (received - distinct)
	outside    int // values that are not integers in 1..want
	max        int // largest value received
	during     int // distinct values whose measurement time lies in a fault window
	dups       []dupRange
}

// dupRange is a run of consecutive values that each arrived twice: first
// and second are the positions (in the store's arrival order, over all
// events) of the first and second copies of its first value.
type dupRange struct{ lo, hi, first, second int }

func (c tally) String() string {
	s := fmt.Sprintf("received %d (distinct %d, max %d), lost %d, duplicated %d, outside %d, made during the fault %d",
		c.received, c.distinct, c.max, c.lost, c.duplicated, c.outside, c.during)
	for _, d := range c.dups {
		s += fmt.Sprintf("; values %d..%d twice (copies at arrival positions %d and %d)", d.lo, d.hi, d.first, d.second)
	}
	return s
}

// window is a time span during which a fault was in force.
type window struct{ from, to time.Time }

// count tallies the store's events of run against the values 1..want; want
// 0 takes the largest value received.
func count(events []riemanntest.Event, run string, want int, faults ...window) tally {
	var c tally
	seen := map[int][]int{} // value -> arrival positions
	for i, e := range events {
		if e.Service != "synthetic.seq" || e.Attributes["run"] != run {
			continue
		}
		c.received++
		v := int(e.Metric)
		if float64(v) != e.Metric || v < 1 || e.Metric > math.MaxInt32 {
			c.outside++
			continue
		}
		seen[v] = append(seen[v], i)
		if len(seen[v]) > 1 {
			continue
		}
		c.max = max(c.max, v)
		for _, w := range faults {
			if !e.Time.Before(w.from) && e.Time.Before(w.to) {
				c.during++
				break
			}
		}
	}
	c.distinct = len(seen)
	c.duplicated = c.received - c.distinct - c.outside
	if want == 0 {
		want = c.max
	}
	for v := range seen {
		if v > want {
			c.outside++
		}
	}
	for v := 1; v <= c.max || v <= want; v++ {
		if v <= want && seen[v] == nil {
			c.lost++
		}
		if len(seen[v]) < 2 {
			continue
		}
		if n := len(c.dups); n > 0 && c.dups[n-1].hi == v-1 {
			c.dups[n-1].hi = v
			continue
		}
		c.dups = append(c.dups, dupRange{lo: v, hi: v, first: seen[v][0], second: seen[v][1]})
	}
	return c
}

// received counts the store's events of run.
func received(s *riemanntest.Server, run string) int {
	n := 0
	for _, e := range s.Events() {
		if e.Service == "synthetic.seq" && e.Attributes["run"] == run {
			n++
		}
	}
	return n
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proxy forwards TCP connections to a target and can cut the network: Cut
// closes every live connection and the listener (new connections are
// refused), Restore listens again on the same port.
type proxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, addr: "127.0.0.1:0", target: target, conns: map[net.Conn]struct{}{}}
	p.Restore()
	t.Cleanup(func() { p.Cut(); p.wg.Wait() })
	return p
}

// Port is the port agents connect to.
func (p *proxy) Port() int {
	_, port, _ := net.SplitHostPort(p.addr)
	n, _ := strconv.Atoi(port)
	return n
}

// Restore listens again; it does nothing when the proxy is up.
func (p *proxy) Restore() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return
	}
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	p.ln, p.addr = ln, ln.Addr().String()
	p.wg.Add(1)
	go p.accept(ln)
}

// Cut closes the listener and every live connection.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
}

func (p *proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln { // cut meanwhile
			p.mu.Unlock()
			_ = c.Close()
			_ = up.Close()
			return
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies from src to dst; when either side ends, both are closed.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// connections counts the established TCP connections (IPv4) whose local
// port is port: on a listener's port, the peers connected to it.
func connections(t *testing.T, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	require.NoError(t, err)
	suffix := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], suffix) && f[3] == "01" {
			n++
		}
	}
	return n
}

// modTime is when the file at path was last written.
func modTime(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.ModTime()
}

// leftover is how many measurements a restarted publisher found in its spool.
func leftover(t *testing.T, p *proc) int {
	t.Helper()
	m := leftoverRE.FindStringSubmatch(p.out.String())
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// noDuplicates requires that the store holds each measurement once. A
// publisher killed after the store took a batch, and before it recorded the
// delivery, finds the batch in its spool at the next start; the riemann
// sink's receipts (receipts= in its URL) tell it how much of the batch the
// store already holds, and it writes only the rest. Should a duplicate
// appear anyway, the failure says where its copies arrived relative to the
// kills, and what the restarted publishers found in their spools and
// reconciled.
func (h *harness) noDuplicates(c tally, restarted []*proc) {
	h.t.Helper()
	if c.duplicated == 0 {
		return
	}
	for _, p := range restarted {
		h.t.Logf("%s found %d measurements in its spool at start", p.name, leftover(h.t, p))
	}
	h.t.Logf("batches reconciled by receipts: %d", h.reconciled())
	h.t.Fatalf("duplicated: %v; kills at store counts %v", c, h.kills)
}

// reconciled counts the batches in doubt that the publishers, by the
// store's receipts, found stored already (killed publishers log no final
// stats, so this reads their logs).
func (h *harness) reconciled() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, p := range h.procs {
		n += strings.Count(p.out.String(), "the store already holds a batch in doubt")
	}
	return n
}
