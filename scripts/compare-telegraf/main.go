//go:build ignore

// Command compare-telegraf runs the reference agent and Telegraf side by
// side with equivalent host inputs and prints what each costs per
// collection cycle: CPU time (the sum of the first field of
// /proc/PID/task/*/schedstat) and resident memory: the largest over the
// run (VmHWM, the kernel's high-water mark of VmRSS, start-up included),
// and from VmRSS sampled every 250 ms after the warm-up the steady one (the
// median) and the largest while running; and the anonymous part of the
// steady one (RssAnon: heap and stacks, what no file backs), the memory a
// process needs whatever its binary's size. It is started by run.sh next to it, which builds the binaries:
//
//	scripts/compare-telegraf/run.sh              # 3 runs of 60 s
//	RUNS=1 DURATION=10s scripts/compare-telegraf/run.sh
//
// In one run it starts Telegraf (cpu percpu+total, mem, system, disk,
// diskio, net into outputs.discard), the agent as shipped (cpu, memory,
// load, disk, filesystem, network, uptime into a publisher with
// discard://), and the agent again with its -http endpoint on (scraped
// every -scrape), all collecting every -interval. CPU is counted from
// -warmup after the start to the end of the run. Each agent is then
// stopped, and its counters and its publisher's are checked: every cycle
// collected, every measurement acknowledged and written. It prints each
// run and the medians, and the ratios against Telegraf. (It is built from
// its file, as run.sh does, and is not a package of the module.)
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var agentDrivers = []string{"cpu", "memory", "load", "disk", "filesystem", "network", "uptime"}

const telegrafConf = `[agent]
  interval = "%s"
  round_interval = true
  flush_interval = "%s"
  collection_jitter = "0s"
  flush_jitter = "0s"
  quiet = true
  omit_hostname = false

[[inputs.cpu]]
  percpu = true
  totalcpu = true
[[inputs.mem]]
[[inputs.system]]
[[inputs.disk]]
[[inputs.diskio]]
[[inputs.net]]
  ignore_protocol_stats = true

[[outputs.discard]]
`

func main() {
	telegraf := flag.String("telegraf", "", "the Telegraf binary")
	agentBin := flag.String("agent", "", "the examples/agent binary")
	publisherBin := flag.String("publisher", "", "the examples/publisher binary")
	runs := flag.Int("runs", 3, "runs")
	duration := flag.Duration("duration", time.Minute, "length of one run")
	interval := flag.Duration("interval", time.Second, "collection interval of both")
	warmup := flag.Duration("warmup", 3*time.Second, "CPU is counted from this long after the start")
	scrape := flag.Duration("scrape", 15*time.Second, "how often the agent's -http endpoint is scraped (0: never)")
	keep := flag.Bool("keep-logs", false, "keep the logs of the processes")
	flag.Parse()
	if *telegraf == "" || *agentBin == "" || *publisherBin == "" {
		fmt.Fprintln(os.Stderr, "compare-telegraf: -telegraf, -agent and -publisher are required")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "compare-telegraf-")
	if err != nil {
		fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Println("logs in", dir)
	}
	conf := filepath.Join(dir, "telegraf.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, telegrafConf, *interval, *interval), 0o644); err != nil {
		fatal(err)
	}
	var results []result
	failed := false
	for i := range *runs {
		r, err := run(runConfig{dir: filepath.Join(dir, strconv.Itoa(i)), telegraf: *telegraf, conf: conf,
			agent: *agentBin, publisher: *publisherBin, duration: *duration, interval: *interval,
			warmup: *warmup, scrape: *scrape})
		if err != nil {
			fmt.Fprintf(os.Stderr, "run %d: %v\n", i+1, err)
			failed = true
		}
		fmt.Printf("run %d: %s\n", i+1, r)
		results = append(results, r)
	}
	if len(results) > 1 {
		fmt.Printf("median: %s\n", median(results))
	}
	if failed {
		os.Exit(1)
	}
}

type runConfig struct {
	dir, telegraf, conf, agent, publisher string
	duration, interval, warmup, scrape    time.Duration
}

// cost is one process's figures.
type cost struct {
	cpuPerCycle float64 // ms
	rssMax      float64 // MB, VmHWM
	rssSteady   float64 // MB, median VmRSS after the warm-up
	rssRunMax   float64 // MB, largest VmRSS after the warm-up
	anonSteady  float64 // MB, median RssAnon after the warm-up
}

type result struct {
	telegraf, agent, agentHTTP cost
}

func (r result) String() string {
	t := r.telegraf
	f := func(c cost) string {
		return fmt.Sprintf("%.2f ms/cycle (%.2fx), RSS max %.1f MB (%.2fx) steady %.1f MB (%.2fx) running max %.1f MB (%.2fx) anon %.1f MB (%.2fx)",
			c.cpuPerCycle, c.cpuPerCycle/t.cpuPerCycle, c.rssMax, c.rssMax/t.rssMax, c.rssSteady, c.rssSteady/t.rssSteady,
			c.rssRunMax, c.rssRunMax/t.rssRunMax, c.anonSteady, c.anonSteady/t.anonSteady)
	}
	return fmt.Sprintf("\n  telegraf   %.2f ms/cycle, RSS max %.1f MB steady %.1f MB running max %.1f MB anon %.1f MB\n  agent      %s\n  agent-http %s",
		t.cpuPerCycle, t.rssMax, t.rssSteady, t.rssRunMax, t.anonSteady, f(r.agent), f(r.agentHTTP))
}

// median takes the median of each figure on its own.
func median(rs []result) result {
	med := func(f func(result) float64) float64 {
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
	of := func(c func(result) cost) cost {
		return cost{med(func(r result) float64 { return c(r).cpuPerCycle }), med(func(r result) float64 { return c(r).rssMax }),
			med(func(r result) float64 { return c(r).rssSteady }), med(func(r result) float64 { return c(r).rssRunMax }),
			med(func(r result) float64 { return c(r).anonSteady })}
	}
	return result{
		telegraf:  of(func(r result) cost { return r.telegraf }),
		agent:     of(func(r result) cost { return r.agent }),
		agentHTTP: of(func(r result) cost { return r.agentHTTP }),
	}
}

// proc is a started process and its log.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

func start(dir, name string, args ...string) (*proc, error) {
	logName := filepath.Join(dir, filepath.Base(name)+".log")
	f, err := os.Create(logName)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, log: logName, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	return p, nil
}

// stop sends SIGTERM and waits up to 20 s, then kills.
func (p *proc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within 20 s of SIGTERM; killed", p.name)
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func run(c runConfig) (result, error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return result{}, err
	}
	var all []*proc
	defer func() {
		for _, p := range all {
			if p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
			}
		}
	}()
	type agentRun struct {
		agent, publisher *proc
		http             string
	}
	startAgent := func(name string, withHTTP bool) (agentRun, error) {
		addr, err := freePort()
		if err != nil {
			return agentRun{}, err
		}
		url := "tcp://" + addr
		pub, err := start(c.dir, name+"-publisher", c.publisher, "-listen", url, "-sink", "discard://", "-stats-every", "0")
		if err != nil {
			return agentRun{}, err
		}
		all = append(all, pub)
		args := []string{c.agent, "-connect", url, "-interval", c.interval.String(), "-drivers", strings.Join(agentDrivers, ",")}
		var httpAddr string
		if withHTTP {
			if httpAddr, err = freePort(); err != nil {
				return agentRun{}, err
			}
			args = append(args, "-http", httpAddr)
		}
		ag, err := start(c.dir, name, args...)
		if err != nil {
			return agentRun{}, err
		}
		all = append(all, ag)
		return agentRun{ag, pub, httpAddr}, nil
	}
	plain, err := startAgent("agent", false)
	if err != nil {
		return result{}, err
	}
	withHTTP, err := startAgent("agent-http", true)
	if err != nil {
		return result{}, err
	}
	tg, err := start(c.dir, "telegraf", c.telegraf, "--config", c.conf)
	if err != nil {
		return result{}, err
	}
	all = append(all, tg)
	measured := []*proc{tg, plain.agent, withHTTP.agent}

	rss := make([][]float64, len(measured))  // after the warm-up
	anon := make([][]float64, len(measured)) // after the warm-up
	sampleRSS := func(warm bool) error {
		for i, p := range measured {
			v, err := status(p.cmd.Process.Pid, "VmRSS:")
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			a, err := status(p.cmd.Process.Pid, "RssAnon:")
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			if warm {
				rss[i] = append(rss[i], v)
				anon[i] = append(anon[i], a)
			}
		}
		return nil
	}
	begin := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var cpu0 []float64
	var t0 time.Time
	nextScrape := begin.Add(c.warmup)
	for now := begin; now.Sub(begin) < c.duration; now = <-tick.C {
		if err := sampleRSS(cpu0 != nil); err != nil {
			return result{}, err
		}
		if cpu0 == nil && now.Sub(begin) >= c.warmup {
			if cpu0, err = cpuOf(measured); err != nil {
				return result{}, err
			}
			t0 = time.Now()
		}
		if c.scrape > 0 && !now.Before(nextScrape) {
			nextScrape = nextScrape.Add(c.scrape)
			if err := scrapeOnce(withHTTP.http); err != nil {
				return result{}, fmt.Errorf("scrape %s: %w", withHTTP.http, err)
			}
		}
	}
	cpu1, err := cpuOf(measured)
	if err != nil {
		return result{}, err
	}
	cycles := float64(time.Since(t0)) / float64(c.interval)
	var r result
	costs := []*cost{&r.telegraf, &r.agent, &r.agentHTTP}
	for i, p := range measured {
		costs[i].cpuPerCycle = (cpu1[i] - cpu0[i]) / 1e6 / cycles
		hwm, err := status(p.cmd.Process.Pid, "VmHWM:")
		if err != nil {
			return result{}, fmt.Errorf("%s: %w", p.name, err)
		}
		costs[i].rssMax = hwm / 1024
		slices.Sort(rss[i])
		if n := len(rss[i]); n > 0 {
			costs[i].rssSteady = rss[i][n/2] / 1024
			costs[i].rssRunMax = rss[i][n-1] / 1024
		}
		slices.Sort(anon[i])
		if n := len(anon[i]); n > 0 {
			costs[i].anonSteady = anon[i][n/2] / 1024
		}
	}
	// Stop, then check that every cycle was delivered.
	elapsed := time.Since(begin)
	var errs []error
	if err := tg.stop(); err != nil && !isSignal(err) {
		errs = append(errs, fmt.Errorf("telegraf: %w (log %s)", err, tg.log))
	}
	for _, ar := range []agentRun{plain, withHTTP} {
		if err := ar.agent.stop(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (log %s)", ar.agent.name, err, ar.agent.log))
		}
		if err := ar.publisher.stop(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (log %s)", ar.publisher.name, err, ar.publisher.log))
		}
		errs = append(errs, checkDelivery(ar.agent.log, ar.publisher.log, elapsed, c.interval))
	}
	return r, errors.Join(errs...)
}

func isSignal(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && !ee.Exited()
}

// checkDelivery reads the agent's and the publisher's final stats lines:
// every driver collected in (nearly) every cycle, every measurement
// acknowledged, and the publisher wrote what the agent had acknowledged.
func checkDelivery(agentLog, pubLog string, elapsed, interval time.Duration) error {
	as, err := statsLine(agentLog)
	if err != nil {
		return err
	}
	ps, err := statsLine(pubLog)
	if err != nil {
		return err
	}
	collections, added, acked := as["Collections"], as["Added"], as["AckedMeasurements"]
	written := ps["Written"]
	cycles := collections / uint64(len(agentDrivers))
	// The first collection is up to a second after the start, the last may
	// be cut by the stop.
	want := uint64(elapsed/interval) - 2
	switch {
	case cycles < want:
		return fmt.Errorf("%s: %d collections of %d drivers: %d cycles, want at least %d in %v", agentLog,
			collections, len(agentDrivers), cycles, want, elapsed.Round(time.Second))
	case added == 0 || acked != added || as["CollectErrors"] != 0:
		return fmt.Errorf("%s: added %d, acknowledged %d, collect errors %d", agentLog, added, acked, as["CollectErrors"])
	case written != acked:
		return fmt.Errorf("%s: the publisher wrote %d measurements, the agent had %d acknowledged", pubLog, written, acked)
	}
	fmt.Printf("  %s: %d cycles, %d measurements collected, acknowledged and written\n", filepath.Base(agentLog), cycles, written)
	return nil
}

var fieldRE = regexp.MustCompile(`([A-Z][A-Za-z]*):(\d+)`)

// statsLine parses the "stopped" line's stats=... of the reference binaries
// (fmt's %+v of their Stats).
func statsLine(file string) (map[string]uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var line string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "msg=stopped") && strings.Contains(sc.Text(), "stats=") {
			line = sc.Text()
		}
	}
	if line == "" {
		return nil, fmt.Errorf("%s: no stopped line with stats", file)
	}
	m := map[string]uint64{}
	for _, f := range fieldRE.FindAllStringSubmatch(line, -1) {
		v, _ := strconv.ParseUint(f[2], 10, 64)
		m[f[1]] = v
	}
	return m, nil
}

// cpuOf returns each process's CPU time in ns: the first field of
// schedstat summed over its threads.
func cpuOf(ps []*proc) ([]float64, error) {
	out := make([]float64, len(ps))
	for i, p := range ps {
		v, err := schedCPU(p.cmd.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		out[i] = v
	}
	return out, nil
}

func schedCPU(pid int) (float64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("no tasks of pid %d: %v", pid, err)
	}
	var sum float64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited
		}
		f, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte(" "))
		v, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", t, err)
		}
		sum += float64(v)
	}
	return sum, nil
}

// status returns a field of /proc/PID/status in kB, such as "VmRSS:".
func status(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.ParseFloat(f[0], 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func scrapeOnce(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return err
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "compare-telegraf:", err)
	os.Exit(1)
}
