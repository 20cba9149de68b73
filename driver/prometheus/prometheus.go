package prometheus

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/internal/service"
	"github.com/meterkit/meter/internal/tlsfiles"
)

func init() { driver.Register("prometheus", New) }

// Defaults of Config.
const (
	DefaultTimeout = 10 * time.Second
	DefaultMaxBody = 16 << 20
)

// acceptHeader asks for the protobuf format first and the text format
// second; both decode to the same metric families.
const acceptHeader = `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,` +
	`text/plain;version=0.0.4;q=0.3,*/*;q=0.1`

// Config is the configuration of the prometheus driver.
type Config struct {
	// URL of the exposition endpoint, http or https. Required.
	URL string `json:"url"`
	// Timeout of one scrape; default 10s. The collection's ctx deadline
	// applies too, whichever comes first.
	Timeout driver.Duration `json:"timeout,omitempty"`
	// Headers are sent with every request, e.g. {"Authorization": "Bearer …"}.
	// They never appear in errors.
	Headers map[string]string `json:"headers,omitempty"`
	// BearerTokenFile names a file holding a bearer token, sent as
	// "Authorization: Bearer TOKEN"; BasicAuth sends a user and the
	// password of a file. Either keeps the secret out of the config file.
	// Like tenant key files, a file that its group or others may read is
	// refused. Read when the driver is made; not with an Authorization
	// header, nor with each other.
	BearerTokenFile string     `json:"bearer_token_file,omitempty"`
	BasicAuth       *BasicAuth `json:"basic_auth,omitempty"`
	// Prefix starts every measurement name, followed by a dot.
	Prefix string `json:"prefix,omitempty"`
	// Allow, if not empty, keeps only the metric families whose name
	// matches one of its patterns (path.Match syntax: *, ?, [a-z]).
	Allow []string `json:"allow,omitempty"`
	// Deny drops the metric families whose name matches one of its
	// patterns; it wins over Allow.
	Deny []string `json:"deny,omitempty"`
	// ResourceID is the resource id of every measurement.
	ResourceID string `json:"resource_id,omitempty"`
	// ResourceLabel names a metric label whose value becomes the
	// measurement's resource id (instead of a label); where the label is
	// missing, ResourceID applies.
	ResourceLabel string `json:"resource_label,omitempty"`
	// MaxBody bounds the response body in bytes; default 16 MiB.
	MaxBody int64 `json:"max_body,omitempty"`
	// TLS configures an https endpoint: the CAs to trust and a client
	// certificate, as an exporter's web configuration may require.
	TLS *TLSConfig `json:"tls,omitempty"`
}

// BasicAuth is HTTP basic authentication with the password in a file.
type BasicAuth struct {
	Username     string `json:"username"`
	PasswordFile string `json:"password_file"`
}

// TLSConfig names PEM files and the server name for an https endpoint.
// Every field is optional; cert_file and key_file go together.
type TLSConfig struct {
	// CAFile holds the CAs the endpoint's certificate must chain to; the
	// system's roots when empty.
	CAFile string `json:"ca_file,omitempty"`
	// CertFile and KeyFile are the client certificate and its key.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// ServerName is the name the endpoint's certificate must carry, when it
	// differs from the URL's host.
	ServerName string `json:"server_name,omitempty"`
}

// Driver scrapes one endpoint. It keeps connections open between
// collections; Close closes them.
type Driver struct {
	cfg    Config
	auth   string // the Authorization header from the secret files; "" for none
	url    string // redacted, for errors
	client *http.Client
	tr     *http.Transport
}

// New is the prometheus driver's factory.
func New(cfg driver.Config) (driver.Driver, error) {
	c := Config{Timeout: driver.Duration(DefaultTimeout), MaxBody: DefaultMaxBody}
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	u, err := c.check()
	if err != nil {
		return nil, fmt.Errorf("prometheus: config: %w", err)
	}
	auth, err := c.authorization()
	if err != nil {
		return nil, fmt.Errorf("prometheus: config: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 1
	tr.IdleConnTimeout = 2 * time.Minute
	if t := c.TLS; t != nil {
		tc, err := tlsfiles.Client{CA: t.CAFile, Cert: t.CertFile, Key: t.KeyFile, ServerName: t.ServerName}.Config()
		if err != nil {
			return nil, fmt.Errorf("prometheus: config: tls: %w", err)
		}
		tr.TLSClientConfig = tc
	}
	return &Driver{
		cfg:    c,
		auth:   auth,
		url:    u.Redacted(),
		tr:     tr,
		client: &http.Client{Transport: tr},
	}, nil
}

// authorization reads the bearer token or the basic-auth password from its
// file and returns the Authorization header to send.
func (c *Config) authorization() (string, error) {
	if c.BearerTokenFile == "" && c.BasicAuth == nil {
		return "", nil
	}
	for k := range c.Headers {
		if strings.EqualFold(k, "Authorization") {
			return "", errors.New("an Authorization header and bearer_token_file or basic_auth both given: keep one")
		}
	}
	if c.BearerTokenFile != "" && c.BasicAuth != nil {
		return "", errors.New("bearer_token_file and basic_auth both given: keep one")
	}
	if c.BearerTokenFile != "" {
		tok, err := service.ReadSecret(c.BearerTokenFile)
		if err != nil {
			return "", fmt.Errorf("bearer_token_file: %w", err)
		}
		if strings.ContainsAny(tok, "\r\n") {
			return "", fmt.Errorf("bearer_token_file %s: the token spans several lines", c.BearerTokenFile)
		}
		return "Bearer " + tok, nil
	}
	b := c.BasicAuth
	if b.Username == "" || b.PasswordFile == "" || strings.Contains(b.Username, ":") {
		return "", errors.New("basic_auth: needs a username (without ':') and a password_file")
	}
	pw, err := service.ReadSecret(b.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("basic_auth: password_file: %w", err)
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(b.Username+":"+pw)), nil
}

func (c *Config) check() (*url.URL, error) {
	if c.URL == "" {
		return nil, errors.New("url is empty")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url %q has no host", u.Redacted())
	}
	if c.TLS != nil && u.Scheme != "https" {
		return nil, fmt.Errorf("tls is set, but url %q is not https", u.Redacted())
	}
	if c.Timeout <= 0 {
		return nil, fmt.Errorf("timeout %v must be positive", time.Duration(c.Timeout))
	}
	if c.MaxBody <= 0 {
		return nil, fmt.Errorf("max_body %d must be positive", c.MaxBody)
	}
	for k, v := range c.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			return nil, fmt.Errorf("headers: malformed header name %q", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			// Do not quote the value: it may be a secret.
			return nil, fmt.Errorf("headers: the value of %q contains a line break", k)
		}
	}
	for _, list := range []struct {
		name string
		pats []string
	}{{"allow", c.Allow}, {"deny", c.Deny}} {
		for _, p := range list.pats {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("%s: pattern %q: %w", list.name, p, err)
			}
		}
	}
	if len(c.Prefix) > meter.MaxNameLen/2 {
		return nil, fmt.Errorf("prefix is %d bytes, over the limit of %d", len(c.Prefix), meter.MaxNameLen/2)
	}
	if len(c.ResourceID) > meter.MaxIDLen {
		return nil, fmt.Errorf("resource_id is %d bytes, over the limit of %d", len(c.ResourceID), meter.MaxIDLen)
	}
	return u, nil
}

// Close closes the idle connections to the endpoint. It may be called more
// than once.
func (d *Driver) Close() error {
	d.tr.CloseIdleConnections()
	return nil
}

var errTooLarge = errors.New("response body too large")

// limitReader returns errTooLarge once more than n bytes were read.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errTooLarge
	}
	return n, err
}

// Collect scrapes the endpoint once.
func (d *Driver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("prometheus: scrape %s: %w", d.url, err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(d.cfg.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.cfg.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("prometheus: scrape %s: %w", d.url, err)
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(scrapeTimeout(ctx).Seconds(), 'f', 3, 64))
	for k, v := range d.cfg.Headers {
		req.Header.Set(k, v)
	}
	if d.auth != "" {
		req.Header.Set("Authorization", d.auth)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		// *url.Error quotes the URL as given: use the redacted one.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("prometheus: scrape %s: %w", d.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("prometheus: scrape %s: %s%s", d.url, resp.Status, bodyNote(b))
	}
	now := time.Now()
	format := expfmt.ResponseFormat(resp.Header)
	if format.FormatType() == expfmt.TypeUnknown {
		format = expfmt.NewFormat(expfmt.TypeTextPlain)
	}
	body := &limitReader{r: resp.Body, n: d.cfg.MaxBody}
	dec := expfmt.NewDecoder(body, format)

	var (
		ms   []meter.Measurement
		skip skipped
	)
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if err == io.EOF {
			break
		}
		if err != nil {
			what := "text format"
			if format.FormatType() == expfmt.TypeProtoDelim {
				what = "protobuf format"
			}
			switch {
			case errors.Is(err, errTooLarge):
				err = fmt.Errorf("prometheus: scrape %s: the response is over the limit of %d bytes (max_body)", d.url, d.cfg.MaxBody)
			case ctx.Err() != nil:
				err = fmt.Errorf("prometheus: scrape %s: reading the response: %w", d.url, ctx.Err())
			default:
				err = fmt.Errorf("prometheus: scrape %s: parsing the response (%s): %w", d.url, what, err)
			}
			return ms, errors.Join(err, skip.err(d.url))
		}
		if !d.wanted(mf.GetName()) {
			continue
		}
		ms = d.family(ms, &mf, now, &skip)
	}
	// The text decoder hands families out in map order: sort for a
	// stable order from one collection to the next.
	slices.SortStableFunc(ms, func(a, b meter.Measurement) int { return strings.Compare(a.Name, b.Name) })
	return ms, skip.err(d.url)
}

// scrapeTimeout is how long the scrape may take, for the header that tells
// the exporter.
func scrapeTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), 0)
	}
	return 0
}

func bodyNote(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf(": %q", s)
}

// wanted applies the allow and deny lists to a family name.
func (d *Driver) wanted(name string) bool {
	match := func(pats []string) bool {
		for _, p := range pats {
			if ok, _ := path.Match(p, name); ok {
				return true
			}
		}
		return false
	}
	if match(d.cfg.Deny) {
		return false
	}
	return len(d.cfg.Allow) == 0 || match(d.cfg.Allow)
}

// skipped counts the samples left out of a collection, by reason.
type skipped struct {
	tooManyLabels, invalid int
	firstTooMany           string
	firstInvalid           error
}

func (s *skipped) err(url string) error {
	var errs []error
	if s.tooManyLabels > 0 {
		errs = append(errs, fmt.Errorf("prometheus: scrape %s: skipped %d samples with more than %d labels (the first of metric %s)",
			url, s.tooManyLabels, meter.MaxLabels, s.firstTooMany))
	}
	if s.invalid > 0 {
		errs = append(errs, fmt.Errorf("prometheus: scrape %s: skipped %d invalid samples (the first: %w)", url, s.invalid, s.firstInvalid))
	}
	return errors.Join(errs...)
}

// unitSuffixes maps the unit suffixes of the Prometheus naming conventions
// to meter units.
var unitSuffixes = []struct{ suffix, unit string }{
	{"_seconds", "s"},
	{"_bytes", "B"},
	{"_percent", "%"},
	{"_celsius", "°C"},
	{"_volts", "V"},
	{"_amperes", "A"},
	{"_watts", "W"},
	{"_joules", "J"},
	{"_hertz", "Hz"},
	{"_meters", "m"},
	{"_grams", "g"},
}

// familyUnit is the unit of a family: its declared unit if it has one,
// otherwise the one its name ends with (before _total).
func familyUnit(mf *dto.MetricFamily) string {
	if u := mf.GetUnit(); u != "" {
		for _, s := range unitSuffixes {
			if s.suffix[1:] == u {
				return s.unit
			}
		}
		return u
	}
	name := strings.TrimSuffix(mf.GetName(), "_total")
	for _, s := range unitSuffixes {
		if strings.HasSuffix(name, s.suffix) {
			return s.unit
		}
	}
	return ""
}

// family appends the measurements of one metric family to ms.
func (d *Driver) family(ms []meter.Measurement, mf *dto.MetricFamily, now time.Time, skip *skipped) []meter.Measurement {
	name := mf.GetName()
	if d.cfg.Prefix != "" {
		name = d.cfg.Prefix + "." + name
	}
	unit := familyUnit(mf)
	for _, m := range mf.GetMetric() {
		t := now
		if ts := m.GetTimestampMs(); ts != 0 {
			t = time.UnixMilli(ts)
		}
		base := meter.Measurement{Time: t, ResourceID: d.cfg.ResourceID, Unit: unit}
		labels := make([]meter.Label, 0, len(m.GetLabel())+1)
		for _, lp := range m.GetLabel() {
			if lp.GetValue() == "" {
				continue // an empty label value is the same as no label
			}
			if d.cfg.ResourceLabel != "" && lp.GetName() == d.cfg.ResourceLabel {
				base.ResourceID = lp.GetValue()
				continue
			}
			labels = append(labels, meter.Label{Key: lp.GetName(), Value: lp.GetValue()})
		}
		slices.SortFunc(labels, func(a, b meter.Label) int { return strings.Compare(a.Key, b.Key) })

		add := func(name string, kind meter.Kind, unit string, v float64, extra ...meter.Label) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return // no value (a summary without observations)
			}
			if len(labels)+len(extra) > meter.MaxLabels {
				if skip.tooManyLabels == 0 {
					skip.firstTooMany = mf.GetName()
				}
				skip.tooManyLabels++
				return
			}
			out := base
			out.Name, out.Kind, out.Unit, out.Value = name, kind, unit, v
			if len(labels)+len(extra) > 0 {
				out.Labels = slices.Concat(labels, extra) // a copy each
			}
			if err := out.Validate(); err != nil {
				if skip.invalid == 0 {
					skip.firstInvalid = fmt.Errorf("metric %s: %w", mf.GetName(), err)
				}
				skip.invalid++
				return
			}
			ms = append(ms, out)
		}

		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			add(name, meter.Cumulative, unit, m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			add(name, meter.Gauge, unit, m.GetGauge().GetValue())
		case dto.MetricType_UNTYPED:
			add(name, meter.Gauge, unit, m.GetUntyped().GetValue())
		case dto.MetricType_SUMMARY:
			s := m.GetSummary()
			for _, q := range s.GetQuantile() {
				add(name, meter.Gauge, unit, q.GetValue(), meter.Label{Key: "quantile", Value: formatFloat(q.GetQuantile())})
			}
			add(name+"_sum", meter.Cumulative, unit, s.GetSampleSum())
			add(name+"_count", meter.Cumulative, "", float64(s.GetSampleCount()))
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			kind := meter.Cumulative
			if mf.GetType() == dto.MetricType_GAUGE_HISTOGRAM {
				kind = meter.Gauge
			}
			h := m.GetHistogram()
			count := float64(h.GetSampleCount())
			if h.SampleCountFloat != nil {
				count = h.GetSampleCountFloat()
			}
			sawInf := false
			for _, b := range h.GetBucket() {
				c := float64(b.GetCumulativeCount())
				if b.CumulativeCountFloat != nil {
					c = b.GetCumulativeCountFloat()
				}
				sawInf = sawInf || math.IsInf(b.GetUpperBound(), 1)
				add(name+"_bucket", kind, "", c, meter.Label{Key: "le", Value: formatFloat(b.GetUpperBound())})
			}
			if len(h.GetBucket()) > 0 && !sawInf {
				// The protobuf format leaves out the +Inf bucket: it is the count.
				add(name+"_bucket", kind, "", count, meter.Label{Key: "le", Value: "+Inf"})
			}
			add(name+"_sum", kind, unit, h.GetSampleSum())
			add(name+"_count", kind, "", count)
		}
	}
	return ms
}

// formatFloat writes a bucket bound or quantile the way Prometheus does.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
