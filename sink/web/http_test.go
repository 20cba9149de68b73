package web_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/web"
)

type seriesJSON struct {
	ID         uint64            `json:"id"`
	Name       string            `json:"name"`
	Host       string            `json:"host"`
	ResourceID string            `json:"resource_id"`
	Labels     map[string]string `json:"labels"`
	Unit       string            `json:"unit"`
	Kind       string            `json:"kind"`
	Last       struct {
		Time  time.Time `json:"time"`
		Value float64   `json:"value"`
	} `json:"last"`
}

type listJSON struct {
	Series    []seriesJSON `json:"series"`
	Truncated bool         `json:"truncated"`
	Position  uint64       `json:"position"`
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

func newServed(t *testing.T, opts ...web.Option) (*web.Sink, *httptest.Server) {
	t.Helper()
	s, err := web.New(opts...)
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		require.NoError(t, s.Close(context.Background()))
		srv.Close()
	})
	return s, srv
}

func TestAPISeries(t *testing.T) {
	s, srv := newServed(t)
	ctx := context.Background()
	require.NoError(t, s.Write(ctx, []meter.Measurement{
		gauge("cpu.util", "web-1", "cpu0", 10, t0, meter.Label{Key: "mode", Value: "user"}),
		gauge("cpu.util", "web-1", "cpu0", 12, t0.Add(10*time.Second), meter.Label{Key: "mode", Value: "user"}),
		gauge("cpu.util", "web-1", "cpu0", 11, t0.Add(5*time.Second), meter.Label{Key: "mode", Value: "user"}), // late
		gauge("memory.used", "web-1", "", 50, t0),
		gauge("cpu.util", "db-1", "cpu0", 70, t0),
	}))

	code, body, h := get(t, srv.URL+"/api/series")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "application/json; charset=utf-8", h.Get("Content-Type"))
	var all listJSON
	require.NoError(t, json.Unmarshal([]byte(body), &all))
	require.Len(t, all.Series, 3)
	require.Equal(t, []string{"db-1", "web-1", "web-1"}, []string{all.Series[0].Host, all.Series[1].Host, all.Series[2].Host})
	cpu := all.Series[1]
	require.Equal(t, "cpu.util", cpu.Name)
	require.Equal(t, "cpu0", cpu.ResourceID)
	require.Equal(t, map[string]string{"mode": "user"}, cpu.Labels)
	require.Equal(t, "%", cpu.Unit)
	require.Equal(t, "gauge", cpu.Kind)
	require.Equal(t, 11.0, cpu.Last.Value, "last is the last written")
	require.True(t, cpu.Last.Time.Equal(t0.Add(5*time.Second)))
	require.Equal(t, uint64(5), all.Position)

	for _, tc := range []struct {
		query string
		names []string
	}{
		{"host=web-1", []string{"cpu.util", "memory.used"}},
		{"host=web-1&prefix=mem", []string{"memory.used"}},
		{"prefix=cpu.", []string{"cpu.util", "cpu.util"}},
		{"host=nobody", []string{}},
		{"limit=1", []string{"cpu.util"}},
	} {
		code, body, _ := get(t, srv.URL+"/api/series?"+tc.query)
		require.Equal(t, http.StatusOK, code, body)
		var l listJSON
		require.NoError(t, json.Unmarshal([]byte(body), &l))
		names := []string{}
		for _, s := range l.Series {
			names = append(names, s.Name)
		}
		require.Equal(t, tc.names, names, tc.query)
		require.Equal(t, tc.query == "limit=1", l.Truncated, tc.query)
	}
	code, _, _ = get(t, srv.URL+"/api/series?limit=-3")
	require.Equal(t, http.StatusBadRequest, code)

	// One series' points, sorted by time, within from and to.
	var one struct {
		Series seriesJSON `json:"series"`
		Points []struct {
			Time  time.Time `json:"time"`
			Value float64   `json:"value"`
		} `json:"points"`
	}
	id := strconv.FormatUint(cpu.ID, 10)
	code, body, _ = get(t, srv.URL+"/api/series/"+id)
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &one))
	require.Equal(t, "cpu.util", one.Series.Name)
	require.Len(t, one.Points, 3)
	require.Equal(t, []float64{10, 11, 12}, []float64{one.Points[0].Value, one.Points[1].Value, one.Points[2].Value})

	q := url.Values{"from": {t0.Add(time.Second).Format(time.RFC3339)}, "to": {t0.Add(5 * time.Second).Format(time.RFC3339)}}
	code, body, _ = get(t, srv.URL+"/api/series/"+id+"?"+q.Encode())
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &one))
	require.Len(t, one.Points, 1)
	require.Equal(t, 11.0, one.Points[0].Value)

	for path, want := range map[string]int{
		"/api/series/999":               http.StatusNotFound,
		"/api/series/x":                 http.StatusBadRequest,
		"/api/series/" + id + "?from=1": http.StatusBadRequest,
		"/api/series/" + id + "?to=now": http.StatusBadRequest,
	} {
		code, body, _ := get(t, srv.URL+path)
		require.Equal(t, want, code, "%s: %s", path, body)
	}

	// Read-only.
	resp, err := http.Post(srv.URL+"/api/series", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// A meter, label and unit named with HTML come back escaped: in JSON as
// \u003c, in the feed as &lt;, and the page itself never holds them.
func TestEscaping(t *testing.T) {
	s, srv := newServed(t)
	const evil = "<script>alert(1)</script>"
	m := gauge(evil, "h", evil, 1, t0, meter.Label{Key: evil, Value: evil})
	m.Unit = "<b>"
	change := meter.Measurement{Name: meter.StateChange, Kind: meter.Gauge, Value: 3, Time: t0, Host: "h&<x>",
		Labels: []meter.Label{{Key: meter.StateChangeMeter, Value: evil}, {Key: meter.StateChangeFrom, Value: "ok"}, {Key: meter.StateChangeTo, Value: "critical"}}}
	require.NoError(t, s.Write(context.Background(), []meter.Measurement{m, change}))

	_, body, _ := get(t, srv.URL+"/api/series")
	require.NotContains(t, body, "<script>")
	require.NotContains(t, body, "<b>")
	require.Contains(t, body, `\u003cscript\u003ealert(1)\u003c/script\u003e`)
	var l listJSON
	require.NoError(t, json.Unmarshal([]byte(body), &l))
	require.Equal(t, evil, l.Series[0].Name, "escaped, not altered")

	_, body, _ = get(t, srv.URL+"/feed.atom")
	require.NotContains(t, body, "<script>")
	require.Contains(t, body, "&lt;script&gt;")

	code, body, h := get(t, srv.URL+"/")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, body, "alert(1)")
	require.Contains(t, h.Get("Content-Security-Policy"), "script-src 'self'")
	require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
}

type atomFeed struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string   `xml:"id"`
	Title   string   `xml:"title"`
	Updated string   `xml:"updated"`
	Author  struct {
		Name string `xml:"name"`
	} `xml:"author"`
	Entries []struct {
		ID      string `xml:"id"`
		Title   string `xml:"title"`
		Updated string `xml:"updated"`
		Content struct {
			Type string `xml:"type,attr"`
			Body string `xml:",chardata"`
		} `xml:"content"`
	} `xml:"entry"`
}

func stateChange(host, meterName, from, to string, at time.Time) meter.Measurement {
	lv, _ := meter.ParseLevel(to)
	return meter.Measurement{Name: meter.StateChange, Kind: meter.Gauge, Value: float64(lv), Time: at, Host: host,
		Labels: []meter.Label{{Key: meter.StateChangeMeter, Value: meterName}, {Key: meter.StateChangeFrom, Value: from}, {Key: meter.StateChangeTo, Value: to}}}
}

func TestFeed(t *testing.T) {
	s, srv := newServed(t)
	ctx := context.Background()
	readFeed := func() atomFeed {
		code, body, h := get(t, srv.URL+"/feed.atom")
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, "application/atom+xml; charset=utf-8", h.Get("Content-Type"))
		var f atomFeed
		require.NoError(t, xml.Unmarshal([]byte(body), &f), body)
		return f
	}
	f := readFeed()
	require.Empty(t, f.Entries)
	require.True(t, strings.HasPrefix(f.ID, "tag:"), f.ID)
	require.NotEmpty(t, f.Author.Name, "Atom wants an author for a feed whose entries have none")

	// 600 changes, among other measurements: the feed holds the newest 500,
	// newest first.
	for i := range 600 {
		to := "critical"
		if i%2 == 1 {
			to = "ok"
		}
		require.NoError(t, s.Write(ctx, []meter.Measurement{
			gauge("cpu.util", "h", "", 90, t0.Add(time.Duration(i)*time.Second)),
			stateChange("h", "cpu.util", "ok", to, t0.Add(time.Duration(i)*time.Second)),
		}))
	}
	f = readFeed()
	require.Len(t, f.Entries, 500)
	newest := t0.Add(599 * time.Second)
	require.Equal(t, newest.Format(time.RFC3339Nano), f.Entries[0].Updated)
	require.Equal(t, newest.Format(time.RFC3339Nano), f.Updated)
	require.Equal(t, t0.Add(100*time.Second).Format(time.RFC3339Nano), f.Entries[499].Updated)
	require.Equal(t, "h cpu.util: ok → ok", f.Entries[0].Title)
	require.Equal(t, "text", f.Entries[0].Content.Type)
	ids := map[string]bool{}
	for _, e := range f.Entries {
		u, err := url.Parse(e.ID)
		require.NoError(t, err)
		require.Equal(t, "tag", u.Scheme, e.ID)
		require.False(t, ids[e.ID], "duplicate id %s", e.ID)
		ids[e.ID] = true
	}

	// Ids are stable: another sink given the same change names it alike.
	other, srv2 := newServed(t)
	require.NoError(t, other.Write(ctx, []meter.Measurement{stateChange("h", "cpu.util", "ok", "ok", newest)}))
	_, body, _ := get(t, srv2.URL+"/feed.atom")
	var f2 atomFeed
	require.NoError(t, xml.Unmarshal([]byte(body), &f2))
	require.Equal(t, f.Entries[0].ID, f2.Entries[0].ID)
}

func TestAuth(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600))
	ctx := context.Background()

	// What Open refuses, without any I/O.
	for _, raw := range []string{
		"web://0.0.0.0:7070",                   // not loopback, no token
		"web://:7070",                          // every interface
		"web://10.1.2.3:7070",                  // not loopback
		"web://127.0.0.1:7070?token=s3cret",    // raw token in the URL
		"web://user:s3cret@127.0.0.1:7070",     // credentials in the URL
		"web://127.0.0.1:7070?max_bytes=many",  // not a number
		"web://127.0.0.1:7070?max_bytes=10",    // too small
		"web://127.0.0.1:7070?colour=blue",     // unknown
		"web://127.0.0.1:7070/path",            // a path
		"web://127.0.0.1",                      // no port
		"web://0.0.0.0:7070?insecure=sometime", // not a bool
	} {
		_, err := sink.Open(ctx, raw)
		require.Error(t, err, raw)
		if strings.Contains(raw, "@") {
			require.NotContains(t, err.Error(), "s3cret", "the error names no password")
		}
	}
	for _, raw := range []string{
		"web://127.0.0.1:7070",
		"web://localhost:7070",
		"web://[::1]:7070",
		"web://0.0.0.0:7070?insecure=1",
		"web://0.0.0.0:7070?token_file=/does/not/exist/yet", // read when it starts
		"web://127.0.0.1:7070?max_bytes=1048576",
	} {
		s, err := sink.Open(ctx, raw)
		require.NoError(t, err, raw)
		require.NoError(t, s.Close(ctx))
	}

	// Requests without the token are refused.
	s, err := web.New(web.WithTokenFile(tokenFile))
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	defer s.Close(ctx)
	do := func(auth string) int {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/series", nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusServiceUnavailable, do("Bearer s3cret"), "the token file is read by Start")
	require.NoError(t, s.Start(t.Context()))
	for auth, want := range map[string]int{
		"":                              http.StatusUnauthorized,
		"Bearer wrong":                  http.StatusUnauthorized,
		"Bearer s3cret":                 http.StatusOK,
		"bearer s3cret":                 http.StatusOK,
		"Bearer s3cret2":                http.StatusUnauthorized,
		"Basic " + b64("anyone:s3cret"): http.StatusOK,
		"Basic " + b64("s3cret:wrong"):  http.StatusUnauthorized,
		"Basic !!!":                     http.StatusUnauthorized,
		"Token s3cret":                  http.StatusUnauthorized,
		"s3cret":                        http.StatusUnauthorized,
	} {
		require.Equal(t, want, do(auth), "Authorization: %q", auth)
	}
	for _, path := range []string{"/", "/feed.atom", "/events", "/static/uPlot.iife.min.js"} {
		code, _, _ := get(t, srv.URL+path)
		require.Equal(t, http.StatusUnauthorized, code, path)
	}
}

// Open does no I/O; the first Write starts the server; Close stops it.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	// The port is taken, and Open still succeeds: it does not listen.
	s, err := sink.Open(ctx, "web://"+addr)
	require.NoError(t, err)
	require.Empty(t, s.(*web.Sink).Addr())
	err = s.Write(ctx, []meter.Measurement{gauge("a", "h", "", 1, t0)})
	require.Error(t, err, "the port is taken")
	require.False(t, sink.IsPermanent(err), "retried: the port may come free")
	require.Zero(t, s.(*web.Sink).Stats().Points, "a batch that failed is not stored")
	require.NoError(t, s.Close(ctx))
	require.NoError(t, ln.Close())

	s, err = sink.Open(ctx, "web://"+addr)
	require.NoError(t, err)
	w := s.(*web.Sink)
	require.NoError(t, s.Write(ctx, []meter.Measurement{gauge("a", "h", "", 1, t0)}))
	require.Equal(t, addr, w.Addr())
	code, body, _ := get(t, "http://"+addr+"/api/series")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"name":"a"`)
	require.NoError(t, s.Close(ctx))
	_, err = net.Dial("tcp", addr)
	require.Error(t, err, "closed")
	require.NoError(t, s.Close(ctx))
	require.Error(t, w.Start(t.Context()))
}

// The event stream sends series and points as they are written, resumes
// with Last-Event-ID, and ends with Close.
func TestEvents(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer http.DefaultClient.CloseIdleConnections()
	s, err := web.New(web.WithAddr("127.0.0.1:0"))
	require.NoError(t, err)
	require.NoError(t, s.Start(t.Context()))
	ctx := context.Background()
	base := "http://" + s.Addr()
	require.NoError(t, s.Write(ctx, []meter.Measurement{gauge("before", "h", "", 1, t0)}))

	resp, err := http.Get(base + "/events")
	require.NoError(t, err)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events := readEvents(resp.Body)

	require.NoError(t, s.Write(ctx, []meter.Measurement{gauge("cpu.util", "h", "cpu0", 42, t0.Add(time.Second))}))
	ev := next(t, events)
	require.Equal(t, "series", ev.name)
	var sj seriesJSON
	require.NoError(t, json.Unmarshal([]byte(ev.data), &sj))
	require.Equal(t, "cpu.util", sj.Name)
	ev = next(t, events)
	require.Equal(t, "points", ev.name)
	require.Equal(t, "1", ev.id, "the log position of the point")
	var pts [][3]float64
	require.NoError(t, json.Unmarshal([]byte(ev.data), &pts))
	require.Equal(t, [][3]float64{{float64(sj.ID), float64(t0.Add(time.Second).UnixMilli()), 42}}, pts)

	// A browser that reconnects resumes after the last event it saw.
	require.NoError(t, s.Write(ctx, []meter.Measurement{gauge("cpu.util", "h", "cpu0", 43, t0.Add(2*time.Second))}))
	req, err := http.NewRequest(http.MethodGet, base+"/events", nil)
	require.NoError(t, err)
	req.Header.Set("Last-Event-ID", "1")
	resp2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	events2 := readEvents(resp2.Body)
	require.Equal(t, "series", next(t, events2).name)
	ev = next(t, events2)
	require.Equal(t, "points", ev.name)
	require.Equal(t, "2", ev.id)
	require.Contains(t, ev.data, ",43]")

	// Close ends the streams.
	done := make(chan error, 1)
	go func() { done <- s.Close(ctx) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the event streams")
	}
	for _, ch := range []<-chan event{events, events2} {
		for range ch { // drains until the stream ends
		}
	}
	resp.Body.Close()
	resp2.Body.Close()
}

// A stream whose browser does not read never holds up Write.
func TestStalledStreamDoesNotBlockWrite(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := web.New(web.WithAddr("127.0.0.1:0"), web.WithMaxBytes(1<<20))
	require.NoError(t, err)
	require.NoError(t, s.Start(t.Context()))
	ctx := context.Background()
	conn, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /events?from=0 HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	// Never read from conn. Write a lot, with long names, to fill the
	// socket buffers.
	long := strings.Repeat("x", 200)
	start := time.Now()
	batch := make([]meter.Measurement, 1000)
	for i := range 200 {
		for j := range batch {
			batch[j] = gauge(long+strconv.Itoa(j), "h", long, float64(i), t0.Add(time.Duration(i)*time.Second))
		}
		require.NoError(t, s.Write(ctx, batch))
	}
	require.Less(t, time.Since(start), 5*time.Second)
	require.NoError(t, s.Close(ctx))
}

type event struct{ name, id, data string }

func readEvents(r io.Reader) <-chan event {
	ch := make(chan event, 100)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					ch <- ev
				}
				ev = event{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				ev.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan event) event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		require.True(t, ok, "stream ended")
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return event{}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// The page and its assets are served from the binary, uPlot with its
// LICENSE, with no reference to anywhere else.
func TestPageAndStatic(t *testing.T) {
	_, srv := newServed(t)
	code, body, h := get(t, srv.URL+"/")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "text/html; charset=utf-8", h.Get("Content-Type"))
	require.Contains(t, body, `src="static/uPlot.iife.min.js"`)
	require.Contains(t, body, `src="static/view.js"`)
	require.NotContains(t, body, "http://")
	require.NotContains(t, body, "https://")
	for path, want := range map[string]string{
		"/static/uPlot.iife.min.js": "uPlot",
		"/static/uPlot.min.css":     ".uplot",
		"/static/uPlot.LICENSE":     "MIT License",
		"/static/view.js":           "EventSource",
		"/static/view.css":          ".chart",
	} {
		code, body, _ := get(t, srv.URL+path)
		require.Equal(t, http.StatusOK, code, path)
		require.Contains(t, body, want, path)
	}
	for _, path := range []string{"/nothing", "/static/", "/static/nothing.js"} {
		code, _, _ = get(t, srv.URL+path)
		require.Equal(t, http.StatusNotFound, code, path)
	}
	// The page sets names as text only.
	_, js, _ := get(t, srv.URL+"/static/view.js")
	require.NotContains(t, js, "innerHTML")
	require.NotContains(t, js, "insertAdjacentHTML")
	require.NotContains(t, js, "document.write")
}

// A stream that resumes after points it missed were evicted is told so,
// resumes from the oldest point held, and is counted.
func TestEventsResumeAfterEviction(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer http.DefaultClient.CloseIdleConnections()
	s, err := web.New(web.WithAddr("127.0.0.1:0"), web.WithMaxBytes(64<<10))
	require.NoError(t, err)
	require.NoError(t, s.Start(t.Context()))
	ctx := context.Background()
	batch := make([]meter.Measurement, 100)
	for i := range 100 {
		for j := range batch {
			batch[j] = gauge("load", "h", "", float64(i*100+j), t0.Add(time.Duration(i*100+j)*time.Millisecond))
		}
		require.NoError(t, s.Write(ctx, batch))
	}
	st := s.Stats()
	require.Greater(t, st.DroppedPoints, uint64(0))

	req, err := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/events", nil)
	require.NoError(t, err)
	req.Header.Set("Last-Event-ID", "10")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	events := readEvents(resp.Body)
	ev := next(t, events)
	require.Equal(t, "reset", ev.name)
	require.Equal(t, `{"missed":`+strconv.FormatUint(st.DroppedPoints-11, 10)+`}`, ev.data)
	require.Equal(t, "series", next(t, events).name)
	ev = next(t, events)
	require.Equal(t, "points", ev.name)
	var pts [][3]float64
	require.NoError(t, json.Unmarshal([]byte(ev.data), &pts))
	require.Equal(t, float64(st.DroppedPoints), pts[0][2], "resumes at the oldest point held")
	require.Equal(t, uint64(1), s.Stats().StreamsDropped)
	require.NoError(t, s.Close(ctx))
	for range events {
	}
	resp.Body.Close()
}

func TestAPIHosts(t *testing.T) {
	s, srv := newServed(t)
	require.NoError(t, s.Write(context.Background(), []meter.Measurement{
		gauge("cpu.util", "web-1", "cpu0", 1, t0),
		gauge("cpu.util", "web-1", "cpu1", 1, t0.Add(time.Second)),
		gauge("cpu.util", "db-1", "cpu0", 1, t0),
		gauge("<i>", "<i>", "", 1, t0),
	}))
	code, body, _ := get(t, srv.URL+"/api/hosts")
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, "<i>")
	var l struct {
		Hosts []struct {
			Host   string    `json:"host"`
			Series int       `json:"series"`
			Last   time.Time `json:"last"`
		} `json:"hosts"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &l))
	require.Len(t, l.Hosts, 3)
	require.Equal(t, "<i>", l.Hosts[0].Host)
	require.Equal(t, "db-1", l.Hosts[1].Host)
	require.Equal(t, "web-1", l.Hosts[2].Host)
	require.Equal(t, 2, l.Hosts[2].Series)
	require.True(t, l.Hosts[2].Last.Equal(t0.Add(time.Second)))
}

// A stream for one host holds that host's series only.
func TestEventsOneHost(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer http.DefaultClient.CloseIdleConnections()
	s, err := web.New(web.WithAddr("127.0.0.1:0"))
	require.NoError(t, err)
	require.NoError(t, s.Start(t.Context()))
	ctx := context.Background()
	require.NoError(t, s.Write(ctx, []meter.Measurement{
		gauge("cpu.util", "a", "", 1, t0), gauge("cpu.util", "b", "", 2, t0), gauge("cpu.util", "a", "", 3, t0.Add(time.Second)),
	}))
	resp, err := http.Get("http://" + s.Addr() + "/events?host=a&from=0")
	require.NoError(t, err)
	events := readEvents(resp.Body)
	ev := next(t, events)
	require.Equal(t, "series", ev.name)
	require.Contains(t, ev.data, `"host":"a"`)
	ev = next(t, events)
	require.Equal(t, "points", ev.name)
	var pts [][3]float64
	require.NoError(t, json.Unmarshal([]byte(ev.data), &pts))
	require.Len(t, pts, 2)
	require.Equal(t, []float64{1, 3}, []float64{pts[0][2], pts[1][2]})
	require.NoError(t, s.Close(ctx))
	for range events {
	}
	resp.Body.Close()
}
