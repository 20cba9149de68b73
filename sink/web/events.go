package web

import (
	"bufio"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strconv"
	"time"
)

//go:embed static
var embedded embed.FS

// staticFS holds the page's script and style and uPlot, with its LICENSE.
var staticFS, _ = fs.Sub(embedded, "static")

// page answers GET /: the page, all of whose content comes from the API and
// is set as text, never as HTML.
func (s *Sink) page(w http.ResponseWriter, r *http.Request) {
	b, err := fs.ReadFile(staticFS, "index.html")
	if err != nil {
		http.Error(w, "web: page missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// streamPoint is one point in a "points" event: series id, Unix
// milliseconds, value.
type streamPoint [3]float64

// events answers GET /events with Server-Sent Events:
//
//   - "series": a series the stream has not named yet (as in /api/series),
//     sent before its first point;
//   - "points": [[series id, Unix ms, value], ...], whose event id is the
//     log position of the last one, so a browser that reconnects (with
//     Last-Event-ID) resumes after it;
//   - "reset": the stream fell behind what the store holds (the points it
//     missed were evicted) and resumes from the oldest held.
//
// Without Last-Event-ID, the stream starts at ?from= (the position
// /api/series gave) or else after the newest point. With ?host=, it holds
// the series of that host only. The stream reads the
// store under its lock only to copy a bounded number of points; a slow
// browser slows its own stream, never Write, and one that takes longer than
// writeTimeout to read is dropped (its browser reconnects and resumes).
func (s *Sink) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	s.mu.RLock()
	pos := s.st.end
	s.mu.RUnlock()
	var start string
	var next uint64 // 1 for Last-Event-ID: resume after the point it names
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		start, next = v, 1
	} else if v := r.URL.Query().Get("from"); v != "" {
		start = v
	}
	if start != "" {
		p, err := strconv.ParseUint(start, 10, 64)
		if err != nil {
			http.Error(w, "web: Last-Event-ID or from=: want a log position", http.StatusBadRequest)
			return
		}
		pos = min(p+next, pos)
	}
	host, oneHost := r.URL.Query().Get("host"), r.URL.Query().Has("host")
	s.streams.Add(1)
	defer s.streams.Add(-1)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	seen := make(map[uint64]bool)
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	var pts []streamPoint
	var newSeries []seriesCopy
	checked := time.Now()
	for {
		// Credentials rotated or revoked end the streams they opened,
		// within a second of the next event or ping: the browser must ask
		// again.
		if s.auth != nil && time.Since(checked) >= recheckEvery {
			checked = time.Now()
			if ok, _ := s.auth.check(r); !ok {
				return
			}
		}
		s.mu.RLock()
		wake := s.wake
		behind := uint64(0)
		if pos < s.st.base {
			behind = s.st.base - pos
			pos = s.st.base
			s.behind.Add(1)
		}
		pts, newSeries = pts[:0], newSeries[:0]
		// Bounded work under the lock: so many points sent, or so many
		// looked at (a stream for one host skips the others').
		for scanned := 0; pos < s.st.end && len(pts) < streamBatch && scanned < streamScan; pos, scanned = pos+1, scanned+1 {
			rec := s.st.at(pos)
			se := &s.st.slots[rec.slot]
			if !se.live || se.n == 0 || pos < se.first || (oneHost && se.host != host) {
				continue
			}
			if !seen[se.id] {
				seen[se.id] = true
				newSeries = append(newSeries, copyOf(se))
			}
			pts = append(pts, streamPoint{float64(se.id), float64(rec.t / 1e6), rec.v})
		}
		more := pos < s.st.end
		s.mu.RUnlock()

		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if behind > 0 {
			bw.WriteString("event: reset\ndata: {\"missed\":" + strconv.FormatUint(behind, 10) + "}\n\n")
		}
		for i := range newSeries {
			b, _ := json.Marshal(newSeries[i].json())
			bw.WriteString("event: series\ndata: ")
			bw.Write(b)
			bw.WriteString("\n\n")
		}
		if len(pts) > 0 {
			b, _ := json.Marshal(pts)
			bw.WriteString("event: points\nid: " + strconv.FormatUint(pos-1, 10) + "\ndata: ")
			bw.Write(b)
			bw.WriteString("\n\n")
		}
		if err := bw.Flush(); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if more {
			continue
		}
		select {
		case <-wake:
		case <-ping.C:
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := bw.WriteString(": ping\n\n"); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}
