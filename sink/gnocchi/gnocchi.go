package gnocchi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gophercloud/gophercloud/v2"
	gnocchiclient "github.com/gophercloud/utils/v2/gnocchi"
	"github.com/gophercloud/utils/v2/gnocchi/metric/v1/resources"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/internal/keystone"
)

// ServiceType is Gnocchi's type in the Keystone catalogue.
const ServiceType = "metric"

// timestampLayout writes measure timestamps in UTC with an explicit offset.
const timestampLayout = "2006-01-02T15:04:05.999999999Z07:00"

// ErrClosed is sink.ErrClosed, which Write wraps after Close.
//
// Deprecated: use sink.ErrClosed.
var ErrClosed = sink.ErrClosed

// Sink is a sink.Sink that posts measurements to Gnocchi as measures, one
// batch request per Write, creating the resources Gnocchi does not know.
// Make one with New; see the package documentation for the mapping.
type Sink struct {
	cfg     config
	session *keystone.Session // nil in basic auth mode
	http    http.Client       // basic auth mode
	client  *gophercloud.ServiceClient
	closed  bool
	buf     bytes.Buffer
}

// New returns a Gnocchi sink. With Keystone auth (the default) credentials
// come from clouds.yaml (WithCloud, else OS_CLOUD) or the OS_* variables,
// and Gnocchi's URL from the catalogue (service type "metric") unless
// WithEndpoint gives it. New reads the credentials but does no network I/O:
// the sink authenticates on the first Write.
func New(opts ...Option) (*Sink, error) {
	cfg := config{resourceType: DefaultResourceType, types: DefaultResourceTypes()}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("gnocchi: %w", err)
		}
	}
	cfg.timeout = cmp.Or(cfg.auth.Timeout, DefaultTimeout)
	cfg.auth.Timeout = cfg.timeout
	s := &Sink{cfg: cfg}
	if cfg.basic {
		if cfg.auth.Endpoint == "" {
			return nil, errors.New("gnocchi: basic auth needs the endpoint (WithEndpoint, or gnocchi+http://host:8041?auth=basic)")
		}
		if cfg.auth.Cloud != "" || cfg.auth.CloudsFile != "" {
			return nil, errors.New("gnocchi: basic auth takes no cloud: it does not use Keystone")
		}
		s.http = keystone.NewHTTPClient(cfg.timeout, cfg.auth.TLS)
		return s, nil
	}
	sess, err := keystone.New(cfg.auth.Config)
	if err != nil {
		return nil, fmt.Errorf("gnocchi: %w", err)
	}
	s.session = sess
	return s, nil
}

func (s *Sink) redact(err error) error {
	if s.session == nil {
		return err
	}
	return s.session.Redact(err)
}

// serviceClient authenticates (once) and finds Gnocchi.
func (s *Sink) serviceClient(ctx context.Context) (*gophercloud.ServiceClient, error) {
	if s.client != nil {
		return s.client, nil
	}
	if s.cfg.basic {
		p := &gophercloud.ProviderClient{HTTPClient: s.http}
		p.UserAgent.Prepend("meterkit")
		sc := &gophercloud.ServiceClient{ProviderClient: p, Endpoint: gophercloud.NormalizeURL(s.cfg.auth.Endpoint), Type: ServiceType}
		sc.ResourceBase = sc.Endpoint + "v1/"
		sc.MoreHeaders = map[string]string{
			"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(s.cfg.basicUser+":")),
		}
		s.client = sc
		return sc, nil
	}
	p, err := s.session.Provider(ctx)
	if err != nil {
		return nil, fmt.Errorf("gnocchi: %w", err)
	}
	var sc *gophercloud.ServiceClient
	if s.cfg.auth.Endpoint != "" {
		sc = &gophercloud.ServiceClient{ProviderClient: p, Endpoint: gophercloud.NormalizeURL(s.cfg.auth.Endpoint), Type: ServiceType}
		sc.ResourceBase = sc.Endpoint + "v1/"
	} else {
		eo := s.session.EndpointOpts()
		sc, err = gnocchiclient.NewGnocchiV1(p, eo)
		if err != nil {
			return nil, fmt.Errorf("gnocchi: find service type %q (region %q) in the catalogue of %s: %w",
				ServiceType, eo.Region, s.session.IdentityEndpoint(), err)
		}
	}
	s.client = sc
	return sc, nil
}

// Endpoint returns Gnocchi's URL once a Write found it, else "".
func (s *Sink) Endpoint() string {
	if s.client == nil {
		return ""
	}
	return s.client.Endpoint
}

// metricBody is one metric of a batch request.
type metricBody struct {
	ArchivePolicyName string    `json:"archive_policy_name,omitempty"`
	Unit              string    `json:"unit,omitempty"`
	Measures          []measure `json:"measures"`
	idx               []int     // indexes into the batch of the measures
}

type measure struct {
	Timestamp string  `json:"timestamp"`
	Value     float64 `json:"value"`
}

// resource gathers what one resource id of a batch needs.
type resource struct {
	idx     []int // indexes into the batch
	first   int   // the measurement whose ids and labels create the resource
	metrics map[string]*metricBody
}

// Write posts batch as measures with create_metrics=true, in one request.
// When Gnocchi answers 400 "Unknown resources", the sink creates them (of
// the type and with the attributes their first measurement calls for, see
// ResourceType, and its project and user ids) and posts again, once. Measurements that cannot be measures
// (no resource id, a "/" in the id or the name) and resources Gnocchi
// refuses to create are rejected in a *sink.PartialError, and so are the
// metrics whose measures Gnocchi refuses (a 4xx answer to the batch: see
// bisect); anything else is retryable.
func (s *Sink) Write(ctx context.Context, batch []meter.Measurement) error {
	if s.closed {
		return fmt.Errorf("gnocchi: write after Close: %w", sink.ErrClosed)
	}
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()

	var rejected []int
	var why []error
	res := map[string]*resource{}
	for i := range batch {
		m := &batch[i]
		rid, err := check(m)
		if err != nil {
			rejected, why = append(rejected, i), append(why, fmt.Errorf("measurement %d (%s): %w", i, m.Name, err))
			continue
		}
		r := res[rid]
		if r == nil {
			r = &resource{first: i, metrics: map[string]*metricBody{}}
			res[rid] = r
		}
		r.idx = append(r.idx, i)
		mb := r.metrics[m.Name]
		if mb == nil {
			mb = &metricBody{ArchivePolicyName: s.cfg.archivePolicy, Unit: m.Unit}
			r.metrics[m.Name] = mb
		}
		mb.Measures = append(mb.Measures, measure{Timestamp: m.Time.UTC().Format(timestampLayout), Value: m.Value})
		mb.idx = append(mb.idx, i)
	}
	if len(res) > 0 {
		sc, err := s.serviceClient(ctx)
		if err != nil {
			return s.redact(err)
		}
		more, err := s.post(ctx, sc, batch, res)
		if err != nil {
			return s.redact(err)
		}
		for _, e := range more {
			rejected, why = append(rejected, e.idx...), append(why, e.err)
		}
	}
	if len(rejected) == 0 {
		return nil
	}
	slices.Sort(rejected)
	err := s.redact(fmt.Errorf("gnocchi: %d of %d measurement(s) refused: %w", len(rejected), len(batch), errors.Join(why...)))
	if len(rejected) == len(batch) {
		return sink.Permanent(err)
	}
	return &sink.PartialError{Rejected: rejected, Err: err}
}

type rejection struct {
	idx []int
	err error
}

// post sends the batch, creates unknown resources and re-posts once. It
// returns the measurements of resources that could not be created, and of
// the metrics Gnocchi refused when it refused the batch (see bisect).
func (s *Sink) post(ctx context.Context, sc *gophercloud.ServiceClient, batch []meter.Measurement, res map[string]*resource) ([]rejection, error) {
	err := s.postBatch(ctx, sc, res)
	if err == nil {
		return nil, nil
	}
	var rejected []rejection
	what := "post measures of %d resource(s) to %s"
	if unknown, ok := unknownResources(err); ok {
		rejected, err = s.createUnknown(ctx, sc, batch, res, unknown)
		if err != nil {
			return nil, err
		}
		if len(res) == 0 {
			return rejected, nil
		}
		if err = s.postBatch(ctx, sc, res); err == nil {
			return rejected, nil
		}
		what += " after creating resources"
	}
	err = fmt.Errorf("gnocchi: "+what+": %w", len(res), sc.Endpoint, keystone.Classify(err))
	if !sink.IsPermanent(err) {
		return nil, err
	}
	budget := maxBisect
	more, err := s.bisect(ctx, sc, batch, metricsOf(res), err, &budget)
	if err != nil {
		return nil, err
	}
	return append(rejected, more...), nil
}

// createUnknown creates the resources of res that Gnocchi named unknown.
// Those it refuses to create are removed from res and returned as
// rejections; a retryable failure ends the Write.
func (s *Sink) createUnknown(ctx context.Context, sc *gophercloud.ServiceClient, batch []meter.Measurement, res map[string]*resource, unknown []string) ([]rejection, error) {
	var rejected []rejection
	for _, rid := range pick(unknown, res) {
		r := res[rid]
		if err := s.createResource(ctx, sc, rid, &batch[r.first]); err != nil {
			if !sink.IsPermanent(err) {
				return nil, err
			}
			rejected = append(rejected, rejection{idx: r.idx, err: err})
			delete(res, rid)
		}
	}
	return rejected, nil
}

// maxBisect bounds the extra requests a refused batch may cost.
const maxBisect = 32

// part is one metric of one resource in a batch: the smallest piece of a
// batch request.
type part struct {
	rid, name string
	first     int // the measurement that creates the resource
	mb        *metricBody
}

func metricsOf(res map[string]*resource) []part {
	var ps []part
	for rid, r := range res {
		for name, mb := range r.metrics {
			ps = append(ps, part{rid, name, r.first, mb})
		}
	}
	slices.SortFunc(ps, func(a, b part) int { return cmp.Or(cmp.Compare(a.rid, b.rid), cmp.Compare(a.name, b.name)) })
	return ps
}

// bisect finds what Gnocchi refuses in a batch it refused with a 4xx (err),
// since it does not say which measure was bad: it posts each half of ps
// and halves again the halves that are refused, down to single metrics. So
// one bad metric costs about 2·log2(metrics) requests and not the other
// measurements. The refused metrics, and the rest once maxBisect requests
// are spent, are returned as rejections with Gnocchi's answer. A retryable
// failure ends the Write: the whole batch is sent again, which Gnocchi
// takes as it is (it keeps one point per timestamp).
//
// Gnocchi checks the measures before it looks for the resources, so a
// batch refused for one bad metric may hold resources that were never
// created: a half answered "Unknown resources" has them created, and is
// posted again.
func (s *Sink) bisect(ctx context.Context, sc *gophercloud.ServiceClient, batch []meter.Measurement, ps []part, err error, budget *int) ([]rejection, error) {
	if len(ps) == 1 {
		return []rejection{{idx: ps[0].mb.idx, err: fmt.Errorf("metric %s of resource %s: %w", ps[0].name, ps[0].rid, err)}}, nil
	}
	var out []rejection
	h := len(ps) / 2
	for _, half := range [][]part{ps[:h], ps[h:]} {
		if *budget <= 0 {
			var idx []int
			for _, p := range half {
				idx = append(idx, p.mb.idx...)
			}
			out = append(out, rejection{idx: idx, err: fmt.Errorf("%d metric(s) refused with others, not tried alone (%d requests spent finding the refused ones): %w",
				len(half), maxBisect, err)})
			continue
		}
		*budget--
		res := map[string]*resource{}
		for _, p := range half {
			r := res[p.rid]
			if r == nil {
				r = &resource{first: p.first, metrics: map[string]*metricBody{}}
				res[p.rid] = r
			}
			r.metrics[p.name] = p.mb
			r.idx = append(r.idx, p.mb.idx...)
		}
		perr := s.postBatch(ctx, sc, res)
		if unknown, ok := unknownResources(perr); ok {
			refused, err := s.createUnknown(ctx, sc, batch, res, unknown)
			if err != nil {
				return nil, err
			}
			out = append(out, refused...)
			half = slices.DeleteFunc(slices.Clone(half), func(p part) bool { return res[p.rid] == nil })
			if len(res) == 0 {
				continue
			}
			*budget--
			perr = s.postBatch(ctx, sc, res)
		}
		if perr == nil {
			continue
		}
		perr = fmt.Errorf("gnocchi: post measures of %d metric(s) to %s: %w", len(half), sc.Endpoint, keystone.Classify(perr))
		if !sink.IsPermanent(perr) {
			return nil, perr
		}
		r, err := s.bisect(ctx, sc, batch, half, perr, budget)
		if err != nil {
			return nil, err
		}
		out = append(out, r...)
	}
	return out, nil
}

func (s *Sink) postBatch(ctx context.Context, sc *gophercloud.ServiceClient, res map[string]*resource) error {
	body := make(map[string]map[string]*metricBody, len(res))
	for rid, r := range res {
		body[rid] = r.metrics
	}
	s.buf.Reset()
	if err := json.NewEncoder(&s.buf).Encode(body); err != nil {
		return sink.Permanent(fmt.Errorf("gnocchi: encode measures: %w", err))
	}
	// The batch call of gophercloud/utils asks for "application/json, */*",
	// and Gnocchi then writes its errors as HTML: ask for JSON only, so that
	// "Unknown resources" can be read.
	resp, err := sc.Post(ctx, sc.ServiceURL("batch", "resources", "metrics", "measures")+"?create_metrics=true", nil, nil, &gophercloud.RequestOpts{
		RawBody:     bytes.NewReader(s.buf.Bytes()),
		OkCodes:     []int{202},
		MoreHeaders: map[string]string{"Content-Type": "application/json", "Accept": "application/json"},
	})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return err
}

// createResource creates the resource rid from measurement m; one that
// already exists (409, another writer was quicker) counts as created.
func (s *Sink) createResource(ctx context.Context, sc *gophercloud.ServiceClient, rid string, m *meter.Measurement) error {
	typ, attrs := s.typeOf(m)
	opts := resources.CreateOpts{ID: rid, ProjectID: m.ProjectID, UserID: m.UserID, ExtraAttributes: attrs}
	r := resources.Create(ctx, sc, typ, opts)
	if r.Err == nil || gophercloud.ResponseCodeIs(r.Err, http.StatusConflict) {
		return nil
	}
	return fmt.Errorf("gnocchi: create %s resource %q at %s: %w", typ, rid, sc.Endpoint, keystone.Classify(r.Err))
}

// check returns the resource id of m, or why m cannot be a measure.
// maxUnit is the longest unit Gnocchi stores, in characters.
const maxUnit = 31

func check(m *meter.Measurement) (string, error) {
	if err := m.Validate(); err != nil {
		return "", err
	}
	rid := m.ResourceID
	if rid == "" {
		rid = m.Host
	}
	switch {
	case rid == "":
		return "", errors.New("no ResourceID and no Host: Gnocchi needs a resource id")
	case strings.Contains(rid, "/"):
		return "", fmt.Errorf("resource id %q contains '/', which Gnocchi does not support", rid)
	case strings.Contains(m.Name, "/"):
		return "", fmt.Errorf("metric name %q contains '/', which Gnocchi does not support", m.Name)
	case utf8.RuneCountInString(m.Unit) > maxUnit:
		// Gnocchi stores units in a column of 31 characters; a longer one
		// makes it stall on the batch until the client gives up, which would
		// look retryable and block the batch for ever.
		return "", fmt.Errorf("unit %q of metric %q is over Gnocchi's %d characters", m.Unit, m.Name, maxUnit)
	}
	return rid, nil
}

// unknownResources reads the ids out of a 400 "Unknown resources" answer:
//
//	{"code": 400, "title": "Bad Request", "description": {"cause": "Unknown resources",
//	  "detail": [{"resource_id": "<uuid>", "original_resource_id": "<id as sent>"}]}}
func unknownResources(err error) ([]string, bool) {
	he := keystone.AsHTTPError(err)
	if he == nil || he.Status != http.StatusBadRequest {
		return nil, false
	}
	var body struct {
		Description struct {
			Cause  string `json:"cause"`
			Detail []struct {
				ResourceID         string `json:"resource_id"`
				OriginalResourceID string `json:"original_resource_id"`
			} `json:"detail"`
		} `json:"description"`
	}
	// AsHTTPError truncates long bodies; decode what can be decoded.
	full := fullBody(err)
	if json.Unmarshal(full, &body) != nil || body.Description.Cause != "Unknown resources" {
		return nil, false
	}
	var ids []string
	for _, d := range body.Description.Detail {
		ids = append(ids, d.OriginalResourceID, d.ResourceID)
	}
	return ids, true
}

func fullBody(err error) []byte {
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		return code.Body
	}
	var pcode *gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &pcode) {
		return pcode.Body
	}
	return nil
}

// pick returns the resource ids of res that Gnocchi named unknown, sorted;
// every one of them when it named none that res has.
func pick(unknown []string, res map[string]*resource) []string {
	var out []string
	for rid := range res {
		for _, u := range unknown {
			if u != "" && strings.EqualFold(u, rid) {
				out = append(out, rid)
				break
			}
		}
	}
	if len(out) == 0 {
		for rid := range res {
			out = append(out, rid)
		}
	}
	slices.Sort(out)
	return out
}

// Close releases idle connections. It is safe to call more than once.
func (s *Sink) Close(context.Context) error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.session != nil {
		s.session.Close()
	} else {
		s.http.CloseIdleConnections()
	}
	return nil
}

var _ sink.Sink = (*Sink)(nil)
