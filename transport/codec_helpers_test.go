package transport_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/internal/wirepb"
)

// toPB converts env to the generated type, applying the host default the
// way AppendEnvelope does.
func toPB(env *transport.Envelope) *wirepb.Envelope {
	p := &wirepb.Envelope{
		Version: env.Version,
		Tenant:  env.Tenant,
		Agent:   env.Agent,
		Seq:     env.Seq,
		SentAt:  nanos(env.SentAt),
		Host:    env.Host,
		Sealed:  env.Sealed,
		Auth:    env.Auth,
	}
	if p.Version == 0 {
		p.Version = transport.Version
	}
	for i := range env.Measurements {
		m := &env.Measurements[i]
		pm := &wirepb.Measurement{
			Name:       m.Name,
			Kind:       wirepb.Kind(m.Kind),
			Unit:       m.Unit,
			Value:      m.Value,
			Time:       nanos(m.Time),
			ResourceId: m.ResourceID,
			ProjectId:  m.ProjectID,
			UserId:     m.UserID,
		}
		if m.Host != env.Host {
			pm.Host = proto.String(m.Host)
		}
		labels := m.Labels
		if p.Version >= 2 && len(labels) > 0 && labels[len(labels)-1].Key == meter.StateLabel {
			// Version 2: a last meterkit.state label with a level's name
			// is the state field.
			if lv, err := meter.ParseLevel(labels[len(labels)-1].Value); err == nil {
				pm.State = wirepb.State(lv + 1)
				labels = labels[:len(labels)-1]
			}
		}
		for _, l := range labels {
			pm.Labels = append(pm.Labels, &wirepb.Label{Key: l.Key, Value: l.Value})
		}
		p.Measurements = append(p.Measurements, pm)
	}
	return p
}

// fromPB converts a generated envelope to ours, in normalized form.
func fromPB(p *wirepb.Envelope) transport.Envelope {
	env := transport.Envelope{
		Version: p.Version,
		Tenant:  p.Tenant,
		Agent:   p.Agent,
		Seq:     p.Seq,
		SentAt:  fromNanos(p.SentAt),
		Host:    p.Host,
		Sealed:  p.Sealed,
		Auth:    p.Auth,
	}
	for _, pm := range p.Measurements {
		m := meter.Measurement{
			Name:       pm.Name,
			Kind:       meter.Kind(pm.Kind),
			Unit:       pm.Unit,
			Value:      pm.Value,
			Time:       fromNanos(pm.Time),
			Host:       p.Host,
			ResourceID: pm.ResourceId,
			ProjectID:  pm.ProjectId,
			UserID:     pm.UserId,
		}
		if pm.Host != nil {
			m.Host = *pm.Host
		}
		for _, l := range pm.Labels {
			m.Labels = append(m.Labels, meter.Label{Key: l.Key, Value: l.Value})
		}
		if pm.State != wirepb.State_STATE_UNSPECIFIED {
			m.Labels = append(m.Labels, meter.Label{Key: meter.StateLabel, Value: strings.ToLower(strings.TrimPrefix(pm.State.String(), "STATE_"))})
		}
		env.Measurements = append(env.Measurements, m)
	}
	return normalize(env)
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// normalize returns env as a round trip gives it back: version filled,
// times in UTC (the epoch is the zero time), empty slices nil.
func normalize(env transport.Envelope) transport.Envelope {
	if env.Version == 0 {
		env.Version = transport.Version
	}
	env.SentAt = fromNanos(nanos(env.SentAt))
	if len(env.Sealed) == 0 {
		env.Sealed = nil
	}
	if len(env.Auth) == 0 {
		env.Auth = nil
	}
	var ms []meter.Measurement
	for _, m := range env.Measurements {
		m.Time = fromNanos(nanos(m.Time))
		if len(m.Labels) == 0 {
			m.Labels = nil
		} else {
			m.Labels = append([]meter.Label(nil), m.Labels...)
		}
		ms = append(ms, m)
	}
	env.Measurements = ms
	return env
}

// decoded returns a deep copy of a decoded envelope, normalized, so that it
// can be compared with require.Equal after the Decoder is reused.
func decoded(env *transport.Envelope) transport.Envelope {
	c := *env
	c.Sealed = append([]byte(nil), env.Sealed...)
	c.Auth = append([]byte(nil), env.Auth...)
	return normalize(c)
}

var randStrings = []string{"", "a", "cpu.util", "disk.read.bytes", "héllo wörld", "日本語", "\x00\x01", "sda", "eth0",
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}

// randomEnvelope returns an envelope with random content that protobuf can
// carry (valid UTF-8, kinds the enum may hold).
func randomEnvelope(r *rand.Rand) transport.Envelope {
	str := func() string { return randStrings[r.IntN(len(randStrings))] }
	tm := func() time.Time {
		switch r.IntN(4) {
		case 0:
			return time.Time{}
		case 1:
			return time.Unix(0, r.Int64()-r.Int64()).UTC()
		default:
			return time.Unix(1_700_000_000+r.Int64N(1e8), r.Int64N(1e9)).UTC()
		}
	}
	env := transport.Envelope{
		Version: uint32(r.IntN(3)),
		Tenant:  str(),
		Agent:   str(),
		SentAt:  tm(),
		Host:    str(),
	}
	if r.IntN(3) > 0 {
		env.Seq = r.Uint64() >> r.IntN(64)
	}
	if r.IntN(4) == 0 {
		env.Sealed = []byte(str())
		env.Auth = []byte(str())
	}
	for range r.IntN(20) {
		m := meter.Measurement{
			Name:       str(),
			Kind:       meter.Kind(r.IntN(4)),
			Unit:       str(),
			Time:       tm(),
			Host:       str(),
			ResourceID: str(),
			ProjectID:  str(),
			UserID:     str(),
		}
		switch r.IntN(6) {
		case 0:
			m.Kind = meter.Kind(r.IntN(256))
		case 1:
			m.Host = env.Host
		}
		switch r.IntN(5) {
		case 0:
		case 1:
			m.Value = math.Copysign(0, -1)
		case 2:
			m.Value = float64(r.Int64()) * -1e-3
		default:
			m.Value = r.NormFloat64() * 1e6
		}
		for range r.IntN(4) {
			m.Labels = append(m.Labels, meter.Label{Key: str(), Value: str()})
		}
		if r.IntN(3) == 0 { // meterkit.state, which version 2 writes in two bytes when last and known
			state := meter.Label{Key: meter.StateLabel, Value: []string{"ok", "warning", "alert", "critical", "stale", "bogus", ""}[r.IntN(7)]}
			at := len(m.Labels)
			if r.IntN(4) == 0 {
				at = r.IntN(at + 1)
			}
			m.Labels = append(m.Labels[:at], append([]meter.Label{state}, m.Labels[at:]...)...)
		}
		env.Measurements = append(env.Measurements, m)
	}
	return env
}

// hostBatch returns an envelope of n typical host measurements.
func hostBatch(n int) *transport.Envelope {
	names := []struct{ name, unit, res string }{
		{"cpu.util", "%", ""}, {"memory.used", "B", ""}, {"load.1", "", ""},
		{"disk.read.bytes", "B", "sda"}, {"disk.write.bytes", "B", "sda"},
		{"network.incoming.bytes", "B", "eth0"}, {"network.outgoing.bytes", "B", "eth0"},
		{"filesystem.free", "B", "/var"},
	}
	t0 := time.Date(2026, 11, 21, 10, 30, 0, 123456789, time.UTC)
	env := &transport.Envelope{
		Version: transport.Version, Tenant: "acme", Agent: "web-01.acme.example",
		Seq: 123456, SentAt: t0.Add(time.Second), Host: "web-01.acme.example",
	}
	for i := range n {
		d := names[i%len(names)]
		m := meter.Measurement{
			Name: d.name, Kind: meter.Gauge, Unit: d.unit, Value: float64(i) * 1.5,
			Time: t0.Add(time.Duration(i) * time.Millisecond), Host: env.Host, ResourceID: d.res,
		}
		if d.res != "" {
			m.Kind = meter.Cumulative
			m.Value = float64(i) * 4096
		}
		switch i % 3 {
		case 1:
			m.Labels = []meter.Label{{Key: "mode", Value: "user"}}
		case 2:
			m.Labels = []meter.Label{{Key: "device", Value: "sda1"}, {Key: "fstype", Value: "ext4"}}
		}
		env.Measurements = append(env.Measurements, m)
	}
	return env
}

func mustEncode(env *transport.Envelope) []byte {
	b, err := transport.AppendEnvelope(nil, env)
	if err != nil {
		panic(fmt.Sprint("encode: ", err))
	}
	return b
}
