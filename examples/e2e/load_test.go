package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var writtenRE = regexp.MustCompile(`msg="publisher stats".* written=(\d+)`)

// lastWritten returns the newest "written" count the publisher logged.
func lastWritten(l *lines) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.all) - 1; i >= 0; i-- {
		if m := writtenRE.FindStringSubmatch(l.all[i]); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			return n
		}
	}
	return 0
}

func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// BenchmarkLoadHarness runs the reference binaries as separate processes:
// two agents making synthetic load as fast as they can, over loopback TCP,
// into one publisher writing to discard://. It reports the publisher's
// steady throughput and its RSS at the start and end of the measured span.
//
//	go test -run '^$' -bench LoadHarness -benchtime 1x ./examples/e2e
func BenchmarkLoadHarness(b *testing.B) {
	dir := b.TempDir()
	pubBin, agentBin := build(b, dir, "publisher"), build(b, dir, "agent")
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(b))
	cfg := filepath.Join(dir, "load.json")
	if err := os.WriteFile(cfg, []byte(`{"synthetic": {"per_collection": 20000}}`), 0o600); err != nil {
		b.Fatal(err)
	}
	pub, _, pubErr := start(b, pubBin, "-listen", addr, "-sink", "discard://", "-workers", "4", "-stats-every", "1s")
	for i := range 2 {
		start(b, agentBin, "-connect", addr, "-drivers", "synthetic", "-config", cfg, "-interval", "10ms",
			"-batch", "1000", "-batch-age", "100ms", "-id", fmt.Sprintf("load-%d", i), "-stats-every", "0")
	}
	time.Sleep(3 * time.Second) // warm up: connections, pools, the publisher's heap
	for b.Loop() {
		w0, rss0, t0 := lastWritten(pubErr), rssKiB(pub.Process.Pid), time.Now()
		peak := rss0
		for range 10 {
			time.Sleep(time.Second)
			peak = max(peak, rssKiB(pub.Process.Pid))
		}
		w1, rss1, t1 := lastWritten(pubErr), rssKiB(pub.Process.Pid), time.Now()
		b.ReportMetric(float64(w1-w0)/t1.Sub(t0).Seconds(), "measurements/s")
		b.ReportMetric(float64(rss0), "pub-RSS-start-KiB")
		b.ReportMetric(float64(rss1), "pub-RSS-end-KiB")
		b.ReportMetric(float64(peak), "pub-RSS-peak-KiB")
	}
	_ = pub.Process.Signal(syscall.SIGTERM)
}
