//go:build integration

package web_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	_ "github.com/meterkit/meter/driver/host" // cpu, memory, disk, network
	"github.com/meterkit/meter/sink/web"
)

var update = flag.Bool("update", false, "collect a minute of this machine's measurements and rewrite testdata/live-view.png, the screenshot the README shows")

// screenshotHost is the host the measurements of this machine are shown as.
const screenshotHost = "compute-01"

// hostDrivers opens the host drivers the screenshot shows, reading this
// machine's /proc and /sys, and the meters kept of each: the charts cpu (%),
// memory (B), disk (B/s) and network (B/s).
func hostDrivers(t *testing.T) map[driver.Driver][]string {
	t.Helper()
	open := func(name, cfg string) driver.Driver {
		d, err := driver.Open(name, driver.ConfigFromJSON([]byte(cfg)))
		require.NoError(t, err, name)
		return d
	}
	return map[driver.Driver][]string{
		open("cpu", `{}`):    {"cpu.util"},
		open("memory", `{}`): {"memory.used", "memory.cached", "memory.available"},
		// Whole disks, not loop or compressed-memory devices.
		open("disk", `{"exclude_prefixes": ["loop", "ram", "zram"]}`): {"disk.read.bytes", "disk.write.bytes"},
		// Loopback (where this machine's agents and publishers talk) and
		// the interfaces it talks to others through; not the idle
		// intermediate functional blocks of traffic shaping.
		open("network", `{"exclude": ["ifb0", "ifb1"]}`): {"network.rx.bytes", "network.tx.bytes"},
	}
}

// collectHost collects from the drivers every second until ctx ends,
// writing what they measure as the measurements of screenshotHost, and
// signals each collection on collected.
func collectHost(ctx context.Context, t *testing.T, s *web.Sink, ds map[driver.Driver][]string, collected chan<- int) {
	var batch []meter.Measurement
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		batch = batch[:0]
		for d, keep := range ds {
			ms, err := d.Collect(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				t.Errorf("collect: %v", err)
				return
			}
			for _, m := range ms {
				for _, k := range keep {
					if m.Name == k {
						m.Host = screenshotHost
						batch = append(batch, m)
					}
				}
			}
		}
		if err := s.Write(ctx, batch); err != nil && ctx.Err() == nil {
			t.Errorf("write: %v", err)
			return
		}
		select {
		case collected <- n:
		default:
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// The page draws the measurements of a real host, read from this machine
// by the host drivers: a chart each for cpu, memory, disk and network, live.
// With -update, it first collects a minute of them and writes the
// screenshot the README shows.
func TestBrowserHostDashboard(t *testing.T) {
	s, err := web.New(web.WithAddr("127.0.0.1:0"))
	require.NoError(t, err)
	require.NoError(t, s.Start(t.Context()))
	ctx, cancel := context.WithCancel(context.Background())
	collected := make(chan int, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); collectHost(ctx, t, s, hostDrivers(t), collected) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		require.NoError(t, s.Close(context.Background()))
	})

	// Rates and cpu.util need two collections; the screenshot a minute.
	history := 3
	if *update {
		history = 61
	}
	for n := 0; n < history; {
		n = <-collected
	}

	bctx, errs := browserPage(t)
	if *update {
		require.NoError(t, chromedp.Do(bctx, chromedp.EmulateViewport(1200, 760)))
	}
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate("http://"+s.Addr()+"/"),
		chromedp.WaitVisible(chromedp.CSS(`li[data-host="`+screenshotHost+`"] a`)),
		chromedp.Click(chromedp.CSS(`li[data-host="`+screenshotHost+`"] a`))))
	// The charts of what the drivers found on this machine: cpu and memory
	// always, disk and network when it has whole disks and interfaces.
	var charts []string
	for _, c := range []struct{ prefix, chart string }{
		{"cpu.", "cpu (%)"}, {"disk.", "disk (B/s)"}, {"memory.", "memory (B)"}, {"network.", "network (B/s)"},
	} {
		if slices.ContainsFunc(s.Measurements(), func(m meter.Measurement) bool { return strings.HasPrefix(m.Name, c.prefix) }) {
			charts = append(charts, c.chart)
		}
	}
	require.Subset(t, charts, []string{"cpu (%)", "memory (B)"})
	for _, c := range charts {
		waitPoints(t, bctx, c, 0)
	}
	titles, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('.chart h2')].map(e => e.textContent)`))
	require.NoError(t, err)
	require.Equal(t, charts, titles, "one chart per meter family, sorted")
	first, err := chartPoints(bctx, "cpu (%)")
	require.NoError(t, err)
	grown := waitPoints(t, bctx, "cpu (%)", first)
	t.Logf("%s: cpu chart %d points, then %d", screenshotHost, first, grown)
	require.Empty(t, errs(), "JavaScript errors")

	if *update {
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#app`)))
		require.NoError(t, err)
		require.NotContains(t, text, "<", "the screenshot shows no test's HTML names")
		require.NoError(t, os.WriteFile(filepath.Join("testdata", "live-view.png"), png, 0o644))
		t.Logf("wrote testdata/live-view.png (%d bytes): %s", len(png), strings.Join(charts, ", "))
	}
}
