package web

import (
	"cmp"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meterkit/meter"
)

// Limits of the API.
const (
	defaultLimit = 1000
	maxLimit     = 100_000
	streamBatch  = 4096             // points per event at most
	streamScan   = 65536            // points a stream looks at per hold of the lock
	writeTimeout = 15 * time.Second // a stream whose browser takes longer to read is dropped
	pingEvery    = 15 * time.Second
	recheckEvery = time.Second // a stream checks its credentials again at most this often
)

func (s *Sink) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/hosts", s.listHosts)
	mux.HandleFunc("GET /api/series", s.listSeries)
	mux.HandleFunc("GET /api/series/{id}", s.getSeries)
	mux.HandleFunc("GET /feed.atom", s.feed)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /{$}", s.page)
	files := http.StripPrefix("/static/", http.FileServerFS(staticFS))
	mux.Handle("GET /static/{file}", files) // files only: no directory listing
	return s.guard(mux)
}

// guard checks the token, when there is one, and sets the headers that keep
// the page's content from ever running as script from elsewhere.
func (s *Sink) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		if s.auth != nil {
			ok, err := s.auth.check(r)
			if !ok && err != nil {
				// The reason (a file's path and mode) is for the
				// operator, who gets it from Start; a client learns
				// only that no request can succeed now.
				msg := "web: credentials unavailable (the token or users file cannot be read)"
				if errors.Is(err, errNotStarted) {
					msg = errNotStarted.Error()
				}
				http.Error(w, msg, http.StatusServiceUnavailable)
				return
			}
			if !ok {
				h.Set("WWW-Authenticate", `Basic realm="meterkit", charset="UTF-8"`)
				h.Add("WWW-Authenticate", `Bearer realm="meterkit"`)
				http.Error(w, "web: unauthorized: send Authorization: Bearer TOKEN, or basic auth (a user of the users file, or the token as password)", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// seriesJSON is a series as the API shows it.
type seriesJSON struct {
	ID         uint64            `json:"id"`
	Name       string            `json:"name"`
	Host       string            `json:"host"`
	ResourceID string            `json:"resource_id"`
	ProjectID  string            `json:"project_id,omitempty"`
	UserID     string            `json:"user_id,omitempty"`
	Labels     map[string]string `json:"labels"`
	Unit       string            `json:"unit"`
	Kind       string            `json:"kind"`
	Points     int               `json:"points"`
	Last       pointJSON         `json:"last"`
}

type pointJSON struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// seriesCopy is what the API needs of a series, copied under the lock.
type seriesCopy struct {
	id                             uint64
	name, unit, host, res, proj, u string
	kind                           meter.Kind
	ident, extra                   []meter.Label
	n                              int
	lastT                          int64
	lastV                          float64
}

func copyOf(se *series) seriesCopy {
	return seriesCopy{id: se.id, name: se.name, unit: se.unit, host: se.host, res: se.res, proj: se.proj, u: se.user,
		kind: se.kind, ident: se.ident, extra: se.extra, n: se.n, lastT: se.lastT, lastV: se.lastV}
}

func (c *seriesCopy) json() seriesJSON {
	labels := make(map[string]string, len(c.ident)+len(c.extra))
	for _, l := range c.ident {
		labels[l.Key] = l.Value
	}
	for _, l := range c.extra {
		labels[l.Key] = l.Value
	}
	return seriesJSON{ID: c.id, Name: c.name, Host: c.host, ResourceID: c.res, ProjectID: c.proj, UserID: c.u,
		Labels: labels, Unit: c.unit, Kind: c.kind.String(), Points: c.n,
		Last: pointJSON{Time: time.Unix(0, c.lastT).UTC(), Value: c.lastV}}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// encoding/json escapes <, > and & in strings: a name stays inert even
	// if a browser is made to read the answer as HTML.
	_ = json.NewEncoder(w).Encode(v)
}

// listSeries answers GET /api/series?host=&prefix=&limit=.
func (s *Sink) listSeries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	host, hostSet := q.Get("host"), q.Has("host")
	prefix := q.Get("prefix")
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			http.Error(w, "web: limit: want a positive number", http.StatusBadRequest)
			return
		}
		limit = min(n, maxLimit)
	}
	var list []seriesCopy
	s.mu.RLock()
	end := s.st.end
	for i := 1; i < len(s.st.slots); i++ {
		se := &s.st.slots[i]
		if !se.live || (hostSet && se.host != host) || !strings.HasPrefix(se.name, prefix) {
			continue
		}
		list = append(list, copyOf(se))
	}
	s.mu.RUnlock()
	slices.SortFunc(list, func(a, b seriesCopy) int {
		return cmp.Or(cmp.Compare(a.host, b.host), cmp.Compare(a.name, b.name), cmp.Compare(a.res, b.res), cmp.Compare(a.id, b.id))
	})
	out := struct {
		Series    []seriesJSON `json:"series"`
		Truncated bool         `json:"truncated,omitempty"`
		Position  uint64       `json:"position"` // the event stream's position when the list was taken
	}{Series: make([]seriesJSON, 0, min(len(list), limit)), Position: end}
	for i := range list {
		if i == limit {
			out.Truncated = true
			break
		}
		out.Series = append(out.Series, list[i].json())
	}
	writeJSON(w, out)
}

// listHosts answers GET /api/hosts: every host with how many series it has
// and when it last sent, sorted by name.
func (s *Sink) listHosts(w http.ResponseWriter, r *http.Request) {
	type hostJSON struct {
		Host   string    `json:"host"`
		Series int       `json:"series"`
		Last   time.Time `json:"last"`
	}
	type acc struct {
		n    int
		last int64
	}
	byHost := make(map[string]*acc)
	s.mu.RLock()
	for i := 1; i < len(s.st.slots); i++ {
		se := &s.st.slots[i]
		if !se.live {
			continue
		}
		a := byHost[se.host]
		if a == nil {
			a = &acc{last: math.MinInt64}
			byHost[se.host] = a
		}
		a.n++
		a.last = max(a.last, se.lastT)
	}
	s.mu.RUnlock()
	out := struct {
		Hosts []hostJSON `json:"hosts"`
	}{Hosts: make([]hostJSON, 0, len(byHost))}
	for h, a := range byHost {
		out.Hosts = append(out.Hosts, hostJSON{Host: h, Series: a.n, Last: time.Unix(0, a.last).UTC()})
	}
	slices.SortFunc(out.Hosts, func(a, b hostJSON) int { return cmp.Compare(a.Host, b.Host) })
	writeJSON(w, out)
}

func parseTime(q url.Values, key string, def int64) (int64, error) {
	v := q.Get(key)
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, fmt.Errorf("web: %s=%q: want an RFC 3339 time", key, v)
	}
	return t.UnixNano(), nil
}

// getSeries answers GET /api/series/{id}?from=&to=.
func (s *Sink) getSeries(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "web: series id: want a number", http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	from, err := parseTime(q, "from", math.MinInt64)
	if err == nil {
		var to int64
		to, err = parseTime(q, "to", math.MaxInt64)
		if err == nil {
			s.writeSeries(w, id, from, to)
			return
		}
	}
	http.Error(w, err.Error(), http.StatusBadRequest)
}

func (s *Sink) writeSeries(w http.ResponseWriter, id uint64, from, to int64) {
	type pt struct {
		t int64
		v float64
	}
	var pts []pt
	s.mu.RLock()
	slot, ok := s.st.byID[id]
	var c seriesCopy
	if ok {
		se := &s.st.slots[slot]
		c = copyOf(se)
		pts = make([]pt, 0, se.n)
		s.st.pointsOf(se, from, to, func(t int64, v float64) { pts = append(pts, pt{t, v}) })
	}
	s.mu.RUnlock()
	if !ok {
		http.Error(w, "web: no such series (it may have been evicted)", http.StatusNotFound)
		return
	}
	slices.SortStableFunc(pts, func(a, b pt) int { return cmp.Compare(a.t, b.t) })
	out := struct {
		Series seriesJSON  `json:"series"`
		Points []pointJSON `json:"points"`
	}{Series: c.json(), Points: make([]pointJSON, len(pts))}
	for i, p := range pts {
		out.Points[i] = pointJSON{Time: time.Unix(0, p.t).UTC(), Value: p.v}
	}
	writeJSON(w, out)
}

// The Atom feed (RFC 4287).
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Title   string      `xml:"title"`
	ID      string      `xml:"id"`
	Updated string      `xml:"updated"`
	Link    []atomLink  `xml:"link"`
	Author  atomAuthor  `xml:"author"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomEntry struct {
	Title    string         `xml:"title"`
	ID       string         `xml:"id"`
	Updated  string         `xml:"updated"`
	Category []atomCategory `xml:"category"`
	Content  atomText       `xml:"content"`
}

type atomCategory struct {
	Term string `xml:"term,attr"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

// tagPrefix starts every id in the feed (RFC 4151 tag URIs).
const tagPrefix = "tag:meterkit.invalid,2026:"

// entryID is the tag URI of a state change: made of what the change is, so
// that the same change has the same id in every feed, across restarts.
func entryID(m *meter.Measurement) string {
	meterName, _ := m.Label(meter.StateChangeMeter)
	from, _ := m.Label(meter.StateChangeFrom)
	to, _ := m.Label(meter.StateChangeTo)
	parts := []string{"state-change", m.Host, m.ResourceID, m.ProjectID, meterName, from, to,
		m.Time.UTC().Format(time.RFC3339Nano)}
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return tagPrefix + strings.Join(parts, "/")
}

// feed answers GET /feed.atom: the newest state changes, newest first.
func (s *Sink) feed(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	changes := s.st.newestChanges()
	s.mu.RUnlock()
	f := atomFeed{
		Title:  "meterkit state changes",
		ID:     tagPrefix + "state-changes",
		Link:   []atomLink{{Rel: "self", Href: "feed.atom"}, {Rel: "alternate", Href: "./"}},
		Author: atomAuthor{Name: "meterkit"},
	}
	updated := time.Unix(0, 0).UTC()
	for i := range changes {
		m := &changes[i].m
		meterName, _ := m.Label(meter.StateChangeMeter)
		from, _ := m.Label(meter.StateChangeFrom)
		to, _ := m.Label(meter.StateChangeTo)
		if to == "" {
			to = meter.Level(m.Value).String()
		}
		where := m.Host
		if m.ResourceID != "" {
			where += " " + m.ResourceID
		}
		t := m.Time.UTC()
		if t.After(updated) {
			updated = t
		}
		e := atomEntry{
			Title:    fmt.Sprintf("%s %s: %s → %s", where, meterName, from, to),
			ID:       entryID(m),
			Updated:  t.Format(time.RFC3339Nano),
			Category: []atomCategory{{Term: to}},
			Content: atomText{Type: "text", Body: fmt.Sprintf("%s on host %q resource %q changed from %s to %s at %s (value %s)",
				meterName, m.Host, m.ResourceID, from, to, t.Format(time.RFC3339Nano), strconv.FormatFloat(m.Value, 'g', -1, 64))},
		}
		if m.ProjectID != "" {
			e.Content.Body += fmt.Sprintf(" project %q", m.ProjectID)
		}
		f.Entries = append(f.Entries, e)
	}
	f.Updated = updated.Format(time.RFC3339Nano)
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(xml.Header))
	enc := xml.NewEncoder(w)
	enc.Indent("", " ")
	_ = enc.Encode(f)
}
