//go:build ignore

// Command riemann-vs-telegraf measures the Riemann path of meterkit against
// Telegraf's, into the same counting Riemann server in one run:
//
//	meterkit: examples/agent (synthetic driver) -> examples/publisher -> riemann://
//	Telegraf: lpgen (line protocol over TCP) -> inputs.socket_listener -> outputs.riemann
//
// # How to run it
//
//	scripts/riemann-vs-telegraf/run.sh                          # 3 runs of 30 s each
//	RUNS=1 DURATION=10s scripts/riemann-vs-telegraf/run.sh      # a quick look
//	scripts/riemann-vs-telegraf/run.sh -per-collection 5000     # flags of this command go through
//
// run.sh builds Telegraf v1.37.2 once from the Go module proxy with custom
// build tags (inputs.socket_listener, outputs.riemann, parsers.influx) into a
// cache outside the repository ($CACHE, default /var/tmp/meterkit-rvt), builds
// the agent, the publisher and the three commands of this directory from the
// checkout, and starts this command.
//
// # What it does
//
// One riemanncount process (sink/riemann/riemanntest, counting) takes the
// events of both pipelines for the whole session. Each run starts one
// pipeline, waits -warmup, then counts for -duration the events the server
// received and the CPU time of every process (the sum of the first field of
// /proc/PID/task/*/schedstat), then stops it and starts the other one. The
// order alternates from run to run (meterkit first in odd runs), since the
// machine may be shared. Both pipelines are loaded past what they deliver:
// the agent's synthetic driver makes -per-collection measurements every
// -agent-interval, and lpgen writes as fast as Telegraf's socket_listener
// reads (or -rate lines a second); what each pipeline cannot deliver it
// drops (the agent's queue, Telegraf's metric buffer), and the drops are
// printed. The load's own cost is in the agent for meterkit (the driver runs
// in it) and in a separate process for Telegraf (lpgen, printed apart and
// not counted in Telegraf's CPU).
//
// It prints, for each run and pipeline: events/s received by the server, the
// CPU of the pipeline's processes in cores (CPU seconds per second), events
// per CPU second, RSS (VmRSS at the end of the span), the counting server's
// CPU (when it nears a core, the server is what limits a pipeline), what the
// pipeline dropped, and for meterkit a delivery check: the events the server
// counted over the pipeline's whole life against the count the publisher
// logs at exit as written. Then the medians over the runs and the ratios
// meterkit/Telegraf of events/s and of events per CPU second. The target of
// issue 15 is events/s meterkit/Telegraf >= 3.
//
// Flooded, Telegraf spends CPU parsing lines its buffer then drops; paced
// just above what it delivers it delivers more. To compare at that point:
//
//	scripts/riemann-vs-telegraf/run.sh -rate 50000 -per-collection 3000
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
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
	"time"
)

const telegrafConf = `[agent]
  interval = "1s"
  flush_interval = "%s"
  metric_batch_size = %d
  metric_buffer_limit = %d
  collection_jitter = "0s"
  flush_jitter = "0s"
  quiet = false
  omit_hostname = false

[[inputs.socket_listener]]
  service_address = "tcp://%s"
  data_format = "influx"

[[outputs.riemann]]
  url = "tcp://%s"
  separator = "/"
  timeout = "5s"
`

type config struct {
	telegraf, agent, publisher, lpgen, counter string

	runs             int
	duration, warmup time.Duration

	perCollection     int
	agentInterval     time.Duration
	batch             int
	batchAge          time.Duration
	rate              int
	tgBatch, tgBuffer int
	tgFlush           time.Duration
	keep              bool
}

func main() {
	var c config
	flag.StringVar(&c.telegraf, "telegraf", "", "the Telegraf binary")
	flag.StringVar(&c.agent, "agent", "", "the examples/agent binary")
	flag.StringVar(&c.publisher, "publisher", "", "the examples/publisher binary")
	flag.StringVar(&c.lpgen, "lpgen", "", "the lpgen binary (scripts/riemann-vs-telegraf/lpgen/main.go)")
	flag.StringVar(&c.counter, "riemanncount", "", "the riemanncount binary (scripts/riemann-vs-telegraf/riemanncount/main.go)")
	flag.IntVar(&c.runs, "runs", 3, "runs (each measures both pipelines)")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "measured span of one pipeline in one run")
	flag.DurationVar(&c.warmup, "warmup", 5*time.Second, "time from a pipeline's start to the measured span")
	flag.IntVar(&c.perCollection, "per-collection", 20000, "the synthetic driver's measurements per collection")
	flag.DurationVar(&c.agentInterval, "agent-interval", 10*time.Millisecond, "the synthetic driver's interval")
	flag.IntVar(&c.batch, "batch", 1000, "the agent's -batch")
	flag.DurationVar(&c.batchAge, "batch-age", 100*time.Millisecond, "the agent's -batch-age")
	flag.IntVar(&c.rate, "rate", 0, "lpgen's lines a second (0: as fast as Telegraf reads)")
	flag.IntVar(&c.tgBatch, "telegraf-batch", 1000, "Telegraf's metric_batch_size (its default 1000, the riemann sink's batch)")
	flag.IntVar(&c.tgBuffer, "telegraf-buffer", 10000, "Telegraf's metric_buffer_limit (its default 10000)")
	flag.DurationVar(&c.tgFlush, "telegraf-flush", 100*time.Millisecond, "Telegraf's flush_interval (a full batch is written at once anyway)")
	flag.BoolVar(&c.keep, "keep-logs", false, "keep the processes' logs and print where")
	flag.Parse()
	if c.telegraf == "" || c.agent == "" || c.publisher == "" || c.lpgen == "" || c.counter == "" {
		fail(errors.New("-telegraf, -agent, -publisher, -lpgen and -riemanncount are required (run.sh gives them)"))
	}
	if c.runs <= 0 || c.duration <= 0 || c.warmup < 0 {
		fail(errors.New("-runs and -duration must be positive, -warmup not negative"))
	}
	if err := session(&c); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "riemann-vs-telegraf:", err)
	os.Exit(1)
}

// result is one pipeline's figures in one run.
type result struct {
	pipeline  string
	eventsPS  float64            // events a second received by the server
	cores     float64            // CPU seconds a second of the pipeline's processes
	parts     map[string]float64 // cores of each process (the pipeline's and the load's)
	rssMB     map[string]float64 // VmRSS at the end of the span
	serverCPU float64            // cores of the counting server
	dropped   string             // what the pipeline dropped, from its logs
	check     string             // meterkit: the server's count against the publisher's
}

func (r *result) perCPU() float64 { return r.eventsPS / r.cores }

func session(c *config) error {
	dir, err := os.MkdirTemp("", "riemann-vs-telegraf-")
	if err != nil {
		return err
	}
	if c.keep {
		fmt.Println("logs in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	srv, err := startCounter(c.counter)
	if err != nil {
		return err
	}
	defer srv.stop()
	fmt.Printf("counting Riemann server (riemanntest) at %s; %d runs, %v warm-up, %v measured\n", srv.addr, c.runs, c.warmup, c.duration)
	fmt.Printf("meterkit: synthetic %d every %v (%.0f/s offered), -batch %d -batch-age %v\n",
		c.perCollection, c.agentInterval, float64(c.perCollection)/c.agentInterval.Seconds(), c.batch, c.batchAge)
	rate := "as fast as Telegraf reads"
	if c.rate > 0 {
		rate = fmt.Sprintf("%d lines/s", c.rate)
	}
	fmt.Printf("telegraf: lpgen %s, metric_batch_size %d, metric_buffer_limit %d, flush_interval %v\n\n", rate, c.tgBatch, c.tgBuffer, c.tgFlush)

	var mk, tg []*result
	for i := range c.runs {
		order := []string{"meterkit", "telegraf"}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, p := range order {
			r, err := measure(c, srv, p, filepath.Join(dir, fmt.Sprintf("run%d-%s", i+1, p)))
			if err != nil {
				return fmt.Errorf("run %d, %s: %w", i+1, p, err)
			}
			fmt.Printf("run %d %s\n", i+1, r)
			if p == "meterkit" {
				mk = append(mk, r)
			} else {
				tg = append(tg, r)
			}
		}
	}
	med := func(rs []*result, f func(*result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	eps := func(r *result) float64 { return r.eventsPS }
	cores := func(r *result) float64 { return r.cores }
	per := func(r *result) float64 { return r.perCPU() }
	fmt.Println()
	fmt.Printf("medians of %d runs:\n", c.runs)
	for _, x := range []struct {
		name string
		rs   []*result
	}{{"meterkit", mk}, {"telegraf", tg}} {
		fmt.Printf("  %-8s %9.0f events/s  %5.2f cores  %9.0f events per CPU second\n", x.name, med(x.rs, eps), med(x.rs, cores), med(x.rs, per))
	}
	fmt.Print("  events/s meterkit/telegraf per run:")
	for i := range mk {
		fmt.Printf(" %.2f", mk[i].eventsPS/tg[i].eventsPS)
	}
	fmt.Println()
	fmt.Printf("ratio meterkit/telegraf (medians): events/s %.2f (target >= 3), events per CPU second %.2f\n",
		med(mk, eps)/med(tg, eps), med(mk, per)/med(tg, per))
	return nil
}

func (r *result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %9.0f events/s  %5.2f cores  %9.0f events per CPU second  [", r.pipeline, r.eventsPS, r.cores, r.perCPU())
	names := make([]string, 0, len(r.parts))
	for n := range r.parts {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.2f cores %.0f MB", n, r.parts[n], r.rssMB[n])
	}
	fmt.Fprintf(&b, "; server %.2f cores] dropped: %s", r.serverCPU, r.dropped)
	if r.check != "" {
		fmt.Fprintf(&b, "; %s", r.check)
	}
	return b.String()
}

// proc is a started process whose output goes to a file.
type proc struct {
	name    string
	load    bool // the load generator: not part of the pipeline's CPU
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func start(name, logPath string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM and waits, then kills after 15 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func measure(c *config, srv *counter, pipeline, prefix string) (*result, error) {
	var procs []*proc
	stopAll := func() {
		for _, p := range procs { // in start order: the source first
			p.stop()
		}
	}
	add := func(p *proc, err error) error {
		if err == nil {
			procs = append(procs, p)
		}
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	before, _ := srv.latest()
	switch pipeline {
	case "meterkit":
		cfg := prefix + "-agent.json"
		if err := os.WriteFile(cfg, fmt.Appendf(nil, `{"synthetic": {"per_collection": %d}}`, c.perCollection), 0o600); err != nil {
			return nil, err
		}
		pub, perr := start("publisher", prefix+"-publisher.log", c.publisher, "-listen", "tcp://"+addr,
			"-sink", "riemann://"+srv.addr, "-stats-every", "1s")
		if err := add(pub, perr); err != nil {
			return nil, err
		}
		time.Sleep(300 * time.Millisecond)
		ag, aerr := start("agent", prefix+"-agent.log", c.agent, "-connect", "tcp://"+addr, "-drivers", "synthetic",
			"-config", cfg, "-interval", c.agentInterval.String(), "-batch", strconv.Itoa(c.batch),
			"-batch-age", c.batchAge.String(), "-id", "rvt", "-stats-every", "1s")
		if err := add(ag, aerr); err != nil {
			stopAll()
			return nil, err
		}
		procs = []*proc{ag, pub} // stop the agent first
	case "telegraf":
		conf := prefix + "-telegraf.conf"
		if err := os.WriteFile(conf, fmt.Appendf(nil, telegrafConf, c.tgFlush, c.tgBatch, c.tgBuffer, addr, srv.addr), 0o600); err != nil {
			return nil, err
		}
		tg, terr := start("telegraf", prefix+"-telegraf.log", c.telegraf, "--config", conf)
		if err := add(tg, terr); err != nil {
			return nil, err
		}
		gen, gerr := start("lpgen", prefix+"-lpgen.log", c.lpgen, "-addr", addr, "-rate", strconv.Itoa(c.rate))
		if err := add(gen, gerr); err != nil {
			stopAll()
			return nil, err
		}
		gen.load = true
		procs = []*proc{gen, tg} // stop the load first
	}
	time.Sleep(c.warmup)
	cpu0, srv0 := cpuAll(procs), cpuNS(srv.proc.cmd.Process.Pid)
	n0, t0 := srv.latest()
	time.Sleep(c.duration)
	n1, t1 := srv.latest()
	cpu1, srv1 := cpuAll(procs), cpuNS(srv.proc.cmd.Process.Pid)
	wall := t1.Sub(t0).Seconds()
	r := &result{pipeline: pipeline, parts: map[string]float64{}, rssMB: map[string]float64{},
		eventsPS: float64(n1-n0) / wall, serverCPU: float64(srv1-srv0) / 1e9 / wall}
	for _, p := range procs {
		if p.exited() {
			stopAll()
			return nil, fmt.Errorf("%s exited during the run; see %s", p.name, p.logPath)
		}
		r.parts[p.name] = float64(cpu1[p.name]-cpu0[p.name]) / 1e9 / wall
		r.rssMB[p.name] = float64(rssKiB(p.cmd.Process.Pid)) / 1024
		if !p.load {
			r.cores += r.parts[p.name]
		}
	}
	stopAll()
	if n1 == n0 {
		return nil, fmt.Errorf("the server received no events; see the logs under %s", filepath.Dir(prefix))
	}
	switch pipeline {
	case "meterkit":
		r.dropped = lastMatch(prefix+"-agent.log", agentDroppedRE, "agent: ? (no stats line)")
	case "telegraf":
		r.dropped = fmt.Sprintf("telegraf buffer overflow: %d metrics", sumMatches(prefix+"-telegraf.log", telegrafDroppedRE))
	}
	time.Sleep(time.Second) // let the server go idle and print its count
	after, _ := srv.latest()
	if pipeline == "meterkit" {
		// The whole life of the pipeline, warm-up and drain included: what the
		// server counted against what the publisher says the sink took.
		written := "?"
		if m := writtenRE.FindSubmatch(must(os.ReadFile(prefix + "-publisher.log"))); m != nil {
			written = string(m[1])
		}
		r.check = fmt.Sprintf("server counted %d, publisher wrote %s", after-before, written)
	}
	return r, nil
}

var (
	agentDroppedRE    = regexp.MustCompile(`msg="agent stats".* added=(\d+) .*dropped=(\d+)`)
	telegrafDroppedRE = regexp.MustCompile(`Metric buffer overflow; (\d+) metrics have been dropped`)
	writtenRE         = regexp.MustCompile(`msg=stopped .*Written:(\d+)`)
)

func must(b []byte, _ error) []byte { return b }

func lastMatch(path string, re *regexp.Regexp, none string) string {
	b, _ := os.ReadFile(path)
	m := re.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return none
	}
	last := m[len(m)-1]
	return fmt.Sprintf("agent: %s of %s added (whole run, its last stats line)", last[2], last[1])
}

func sumMatches(path string, re *regexp.Regexp) uint64 {
	b, _ := os.ReadFile(path)
	var n uint64
	for _, m := range re.FindAllSubmatch(b, -1) {
		v, _ := strconv.ParseUint(string(m[1]), 10, 64)
		n += v
	}
	return n
}

func cpuAll(procs []*proc) map[string]uint64 {
	m := map[string]uint64{}
	for _, p := range procs {
		m[p.name] = cpuNS(p.cmd.Process.Pid)
	}
	return m
}

// cpuNS returns the CPU time of a process in nanoseconds: the sum over its
// threads of the first field of /proc/PID/task/TID/schedstat.
func cpuNS(pid int) uint64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum uint64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			v, _ := strconv.ParseUint(f[0], 10, 64)
			sum += v
		}
	}
	return sum
}

func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// counter is the riemanncount process and the newest count it printed.
type counter struct {
	proc *proc
	addr string

	mu     sync.Mutex
	events uint64
	at     time.Time
}

func startCounter(bin string) (*counter, error) {
	cmd := exec.Command(bin, "-every", "200ms")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start riemanncount: %w", err)
	}
	c := &counter{proc: &proc{name: "riemanncount", cmd: cmd, done: make(chan struct{})}}
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		_ = cmd.Process.Kill()
		return nil, errors.New("riemanncount printed no address")
	}
	a, ok := strings.CutPrefix(sc.Text(), "listening ")
	if !ok {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("riemanncount: unexpected %q", sc.Text())
	}
	c.addr = a
	go func() {
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 3 || f[0] != "count" {
				continue
			}
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			n, _ := strconv.ParseUint(f[2], 10, 64)
			c.mu.Lock()
			c.events, c.at = n, time.Unix(0, ns)
			c.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(c.proc.done)
	}()
	return c, nil
}

// latest returns the newest count and when the server took it.
func (c *counter) latest() (uint64, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events, c.at
}

func (c *counter) stop() { c.proc.stop() }
