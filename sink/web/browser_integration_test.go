//go:build integration

package web_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink/web"
)

// chromium finds Debian's chromium (or another Chrome); without one the
// browser tests skip, unless REQUIRE_BROWSER=1 (set by .ci/run once it
// installed chromium), where they fail.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("REQUIRE_BROWSER") == "1" {
		t.Fatal("no chromium on PATH, and REQUIRE_BROWSER=1 (apt-get install -y chromium)")
	}
	t.Skip("no chromium on PATH (apt-get install -y chromium); REQUIRE_BROWSER=1 makes this a failure")
	return ""
}

// browserPage starts a headless browser and returns a context for one tab,
// with the page's JavaScript errors (console errors, exceptions, failed
// loads) and dialogs collected, to be read with errs.
func browserPage(t *testing.T) (ctx context.Context, errs func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1300, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	t.Cleanup(func() { cancelT(); cancelB(); cancelA(); wg.Wait() })
	add := func(s string) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}
	messages := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				add(string(m.Type) + ": " + m.String())
			}
		}
	}()
	go func() {
		defer wg.Done()
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			add("dialog: " + ev.Message)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// feed writes, until ctx ends, a cpu meter for host h1 every 100 ms (two
// resources), a cumulative network counter, a meter named with HTML, and a
// level change every second.
func feed(ctx context.Context, t *testing.T, s *web.Sink) {
	const evil = "<script>alert(1)</script>"
	var bytes float64
	// Five minutes of history every five seconds, then live every 100 ms.
	const history = 60
	for i := 0; ctx.Err() == nil; i++ {
		now := time.Now()
		if i <= history { // the first live point comes 5 s after the last of the history
			now = now.Add(-time.Duration(history-i) * 5 * time.Second)
			bytes += 5 * (150_000 + 100_000*math.Sin(float64(i)/6))
		} else {
			bytes += 0.1 * (150_000 + 100_000*math.Sin(float64(i)/6))
		}
		batch := []meter.Measurement{
			{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 45 + 30*math.Sin(float64(i)/8), Time: now, Host: "h1", ResourceID: "cpu0"},
			{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 40 + 25*math.Cos(float64(i)/11), Time: now, Host: "h1", ResourceID: "cpu1"},
			{Name: "network.bytes.received", Kind: meter.Cumulative, Unit: "B", Value: bytes, Time: now, Host: "h1", ResourceID: "eth0"},
			{Name: evil, Kind: meter.Gauge, Unit: "<b>", Value: 1, Time: now, Host: "h1", ResourceID: evil},
			{Name: formulaName, Kind: meter.Gauge, Unit: "1", Value: -1, Time: now, Host: "h1"},
		}
		if i%10 == 0 {
			batch = append(batch, meter.Measurement{Name: meter.StateChange, Kind: meter.Gauge, Value: 3, Time: now, Host: "h1",
				Labels: []meter.Label{{Key: meter.StateChangeMeter, Value: "cpu.util"}, {Key: meter.StateChangeFrom, Value: "ok"}, {Key: meter.StateChangeTo, Value: "critical"}}})
		}
		if err := s.Write(ctx, batch); err != nil && ctx.Err() == nil {
			t.Errorf("write: %v", err)
			return
		}
		if i < history {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// formulaName is a meter name that a spreadsheet would run as a formula.
const formulaName = `=SUM(1,2)`

func startSink(t *testing.T) (*web.Sink, string) {
	t.Helper()
	s, err := web.New(web.WithAddr("127.0.0.1:0"))
	require.NoError(t, err)
	require.NoError(t, s.Start(t.Context()))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); feed(ctx, t, s) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		require.NoError(t, s.Close(context.Background()))
	})
	return s, "http://" + s.Addr() + "/"
}

func chartPoints(ctx context.Context, chart string) (int, error) {
	name, _ := json.Marshal(chart)
	return chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(
		`+(([...document.querySelectorAll('[data-chart]')].find(e => e.dataset.chart === %s) || {dataset: {}}).dataset.points || 0)`, name)))
}

func waitPoints(t *testing.T, ctx context.Context, chart string, above int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, err := chartPoints(ctx, chart)
		require.NoError(t, err)
		if n > above {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("chart %q: no more than %d points within 10 s", chart, above)
	return 0
}

// The page loads without JavaScript errors; the host's cpu chart is drawn
// and grows; the meter named with HTML shows as text; PNG export gives an
// image; a level change is in the Atom feed.
func TestBrowserLiveView(t *testing.T) {
	_, base := startSink(t)
	ctx, errs := browserPage(t)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base),
		chromedp.WaitVisible(chromedp.CSS(`li[data-host="h1"] a`)),
		chromedp.Click(chromedp.CSS(`li[data-host="h1"] a`))))

	waitPoints(t, ctx, "cpu (%)", 0)
	time.Sleep(time.Second) // the history is loaded by then
	first, err := chartPoints(ctx, "cpu (%)")
	require.NoError(t, err)
	grown := waitPoints(t, ctx, "cpu (%)", first)
	t.Logf("cpu chart: %d points, then %d as the stream brings more", first, grown)
	waitPoints(t, ctx, "network (B/s)", 0)

	// The HTML name is text: a heading that reads as the name, no element
	// made of it, no dialog.
	titles, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('.chart h2')].map(e => e.textContent)`))
	require.NoError(t, err)
	require.Contains(t, titles, "<script>alert(1)</script> (<b>)")
	injected, err := chromedp.Run(ctx, chromedp.Evaluate[int](
		`document.querySelectorAll('#app script, #app b, #app img').length`))
	require.NoError(t, err)
	require.Zero(t, injected)

	// PNG export: the button downloads a non-empty PNG.
	dir := t.TempDir()
	_, err = chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: ptr(true)})
	require.NoError(t, err)
	b := download(t, ctx, dir, `[data-chart="cpu (%)"] button.png`)
	require.Greater(t, len(b), 1000)
	require.Equal(t, "\x89PNG", string(b[:4]))

	// CSV export: a name a spreadsheet would run as a formula is escaped,
	// values are numbers.
	waitPoints(t, ctx, formulaName+" (1)", 0)
	csv := string(download(t, ctx, dir, `[data-chart='`+formulaName+` (1)'] button.csv`))
	lines := strings.Split(strings.TrimSpace(csv), "\r\n")
	require.Equal(t, `time_utc,"'=SUM(1,2)"`, lines[0])
	require.Regexp(t, `^\d{4}-\d\d-\d\dT[0-9:.]+Z,-1$`, lines[len(lines)-1])

	// Local time, with UTC shown beside it.
	clock, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('clock').textContent`))
	require.NoError(t, err)
	require.Regexp(t, `\d:\d\d:\d\d.* local, \d\d:\d\d:\d\d UTC`, clock)

	require.Empty(t, errs(), "JavaScript errors")

	// The level change is in the feed, as Atom.
	resp, err := http.Get(base + "feed.atom")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	var f atomFeed
	require.NoError(t, xml.Unmarshal(body, &f))
	require.NotEmpty(t, f.Entries)
	require.Equal(t, "h1 cpu.util: ok → critical", f.Entries[0].Title)
}

// download clicks the button sel and returns the file it downloads.
func download(t *testing.T, ctx context.Context, dir, sel string) []byte {
	t.Helper()
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))))
	for ev, err := range progress {
		require.NoError(t, err, "waiting for the download of %s", sel)
		if ev.State != browser.DownloadProgressStateCompleted {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
		require.NoError(t, err)
		return b
	}
	return nil
}

// With 500 series on one host, how long the first chart takes to draw: a
// figure, not an assertion.
func TestBrowserFiveHundredSeries(t *testing.T) {
	s, err := web.New(web.WithAddr("127.0.0.1:0"))
	require.NoError(t, err)
	require.NoError(t, s.Start(t.Context()))
	defer s.Close(context.Background())
	start := time.Now().Add(-10 * time.Minute)
	batch := make([]meter.Measurement, 500)
	for step := range 60 { // ten minutes, every ten seconds
		for k := range batch {
			batch[k] = meter.Measurement{Name: fmt.Sprintf("fam%d.meter", k%5), Kind: meter.Gauge, Unit: "1",
				Value: float64(k + step), Time: start.Add(time.Duration(step) * 10 * time.Second), Host: "big", ResourceID: fmt.Sprintf("r%d", k)}
		}
		require.NoError(t, s.Write(context.Background(), batch))
	}
	ctx, errs := browserPage(t)
	// The browser starts with its first action: not on the clock.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	t0 := time.Now()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+s.Addr()+"/#host/big")))
	waitPoints(t, ctx, "fam0 (1)", 0)
	t.Logf("500 series, 30,000 points: first chart drawn %v after navigation", time.Since(t0).Round(time.Millisecond))
	require.Empty(t, errs(), "JavaScript errors")
}

func ptr[T any](v T) *T { return &v }

// The hosts page pages and searches.
func TestBrowserHostsSearchAndPaging(t *testing.T) {
	s, err := web.New(web.WithAddr("127.0.0.1:0"))
	require.NoError(t, err)
	require.NoError(t, s.Start(t.Context()))
	defer s.Close(context.Background())
	batch := make([]meter.Measurement, 120)
	for i := range batch {
		batch[i] = meter.Measurement{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 1, Time: time.Now(), Host: fmt.Sprintf("host-%d", i)}
	}
	require.NoError(t, s.Write(context.Background(), batch))
	ctx, errs := browserPage(t)
	count := func() int {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#hosts li').length`))
		require.NoError(t, err)
		return n
	}
	// In one evaluation: the list is redrawn on each key typed and every
	// few seconds, so a node found by one call may be gone by the next.
	heading := func() string {
		h, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('#hostlist h1') || {}).textContent || ""`))
		require.NoError(t, err)
		return h
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+s.Addr()+"/"), chromedp.WaitVisible(chromedp.CSS(`#hosts li`))))
	require.Equal(t, "120 hosts", heading())
	require.Equal(t, 50, count())
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.pager button:last-child`))))
	require.Eventually(t, func() bool { return count() == 50 }, 5*time.Second, 50*time.Millisecond)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.pager button:last-child`))))
	require.Eventually(t, func() bool { return count() == 20 }, 5*time.Second, 50*time.Millisecond, "the third page holds the last 20")
	require.NoError(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#search`), "host-11")))
	require.Eventually(t, func() bool { return heading() == "11 hosts" }, 5*time.Second, 50*time.Millisecond, "host-11 and host-110 … host-119")
	require.Equal(t, 11, count())
	require.Empty(t, errs(), "JavaScript errors")
}
