package ceilometer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/internal/keystone"
)

// ServiceType is the catalogue type of Ceilometer's legacy v2 API.
const ServiceType = "metering"

// V2 is a sink.Sink that posts measurements to Ceilometer's legacy v2 REST
// API (POST /v2/meters/{name}), which clouds older than Queens (2017) still
// run. It authenticates with Keystone and finds the API in the catalogue
// (service type "metering"). Make one with NewV2.
type V2 struct {
	cfg     config
	session *keystone.Session
	mp      mapping
	client  *gophercloud.ServiceClient
	closed  bool
}

// NewV2 returns a sink for the legacy v2 API. Credentials come from
// clouds.yaml (WithCloud, else OS_CLOUD) or the OS_* variables. It reads
// them but does no network I/O: the sink authenticates on the first Write.
func NewV2(opts ...V2Option) (*V2, error) {
	cfg, err := newConfig(opts, V2Option.applyV2)
	if err != nil {
		return nil, err
	}
	s, err := keystone.New(cfg.auth.Config)
	if err != nil {
		return nil, fmt.Errorf("ceilometer: %w", err)
	}
	return &V2{cfg: cfg, session: s, mp: mapping{source: cfg.source}}, nil
}

func (v *V2) serviceClient(ctx context.Context) (*gophercloud.ServiceClient, error) {
	if v.client != nil {
		return v.client, nil
	}
	p, err := v.session.Provider(ctx)
	if err != nil {
		return nil, fmt.Errorf("ceilometer: %w", err)
	}
	endpoint := v.cfg.auth.Endpoint
	if endpoint == "" {
		eo := v.session.EndpointOpts()
		eo.ApplyDefaults(ServiceType)
		endpoint, err = p.EndpointLocator(eo)
		if err != nil {
			return nil, fmt.Errorf("ceilometer: find service type %q (region %q) in the catalogue of %s: %w",
				ServiceType, eo.Region, v.session.IdentityEndpoint(), err)
		}
	}
	v.client = &gophercloud.ServiceClient{ProviderClient: p, Endpoint: gophercloud.NormalizeURL(endpoint), Type: ServiceType}
	return v.client, nil
}

// Write posts batch, one request per meter name, each answered 201 when the
// API stored the samples. A 4xx answer (other than 401, 403, 404, 408, 409,
// 429) rejects that meter's samples for good (a *sink.PartialError, or
// sink.Permanent when nothing was accepted); a 401 makes the sink fetch a new
// token and try once more; anything else is retryable, and a retry posts
// again the meters that had succeeded.
func (v *V2) Write(ctx context.Context, batch []meter.Measurement) error {
	if v.closed {
		return fmt.Errorf("ceilometer: post samples via %s after Close: %w", v.session.IdentityEndpoint(), sink.ErrClosed)
	}
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, v.cfg.timeout)
	defer cancel()
	sc, err := v.serviceClient(ctx)
	if err != nil {
		return v.session.Redact(err)
	}
	type group struct {
		idx     []int
		samples []v2Sample
	}
	var (
		order    []string
		groups   = map[string]*group{}
		rejected []int
		why      []error
	)
	for i := range batch {
		m := &batch[i]
		if err := m.Validate(); err != nil {
			rejected, why = append(rejected, i), append(why, err)
			continue
		}
		s, err := v.mp.toV2(m)
		if err != nil {
			rejected, why = append(rejected, i), append(why, fmt.Errorf("measurement %d (%s): %w", i, m.Name, err))
			continue
		}
		g := groups[m.Name]
		if g == nil {
			g = &group{}
			groups[m.Name] = g
			order = append(order, m.Name)
		}
		g.idx = append(g.idx, i)
		g.samples = append(g.samples, s)
	}
	var retry []error
	for _, name := range order {
		g := groups[name]
		u := sc.ServiceURL("v2", "meters", url.PathEscape(name))
		body, err := json.Marshal(g.samples)
		if err != nil {
			rejected, why = append(rejected, g.idx...), append(why, err)
			continue
		}
		resp, err := sc.Post(ctx, u, nil, nil, &gophercloud.RequestOpts{
			RawBody:     bytes.NewReader(body),
			OkCodes:     []int{201},
			MoreHeaders: map[string]string{"Content-Type": "application/json", "Accept": "application/json"},
		})
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err == nil {
			continue
		}
		err = fmt.Errorf("ceilometer: post %d sample(s) of meter %q: %w", len(g.samples), name, keystone.Classify(err))
		if sink.IsPermanent(err) {
			rejected, why = append(rejected, g.idx...), append(why, err)
		} else {
			retry = append(retry, err)
		}
	}
	if len(retry) > 0 {
		return v.session.Redact(errors.Join(retry...))
	}
	if len(rejected) == 0 {
		return nil
	}
	slices.Sort(rejected)
	err = fmt.Errorf("ceilometer: %d of %d measurement(s) refused: %w", len(rejected), len(batch), errors.Join(why...))
	err = v.session.Redact(err)
	if len(rejected) == len(batch) {
		return sink.Permanent(err)
	}
	return &sink.PartialError{Rejected: rejected, Err: err}
}

// Close releases idle connections. It is safe to call more than once.
func (v *V2) Close(context.Context) error {
	if !v.closed {
		v.closed = true
		v.session.Close()
	}
	return nil
}

// String describes the sink without credentials.
func (v *V2) String() string {
	var b strings.Builder
	b.WriteString("ceilometer v2 API via ")
	b.WriteString(v.session.IdentityEndpoint())
	return b.String()
}

var _ sink.Sink = (*V2)(nil)
