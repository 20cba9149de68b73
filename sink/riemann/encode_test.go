package riemann

import (
	"testing"
	"time"

	riemannpb "github.com/riemann/riemann-go-client/proto"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/meterkit/meter"
)

func attrs(kv ...string) []*riemannpb.Attribute {
	var out []*riemannpb.Attribute
	for i := 0; i < len(kv); i += 2 {
		out = append(out, &riemannpb.Attribute{Key: proto.String(kv[i]), Value: proto.String(kv[i+1])})
	}
	return out
}

func TestEncodeMapping(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC) // sub-microsecond part is dropped
	base := meter.Measurement{Name: "cpu.util", Kind: meter.Gauge, Value: 42.5, Time: ts}
	defaults := encoder{host: "default-host", state: "ok", ttl: 60}
	for _, tc := range []struct {
		name string
		enc  encoder
		m    func(m *meter.Measurement)
		want *riemannpb.Event
	}{
		{
			name: "every field",
			enc:  encoder{host: "default-host", state: "ok", ttl: 60, tags: []string{"meterkit", "prod"}},
			m: func(m *meter.Measurement) {
				m.Unit, m.Host, m.ResourceID, m.ProjectID, m.UserID = "%", "web1", "cpu0", "p1", "u1"
				m.Labels = []meter.Label{
					{Key: "zone", Value: "a"},
					{Key: LabelTTL, Value: "2.5"},
					{Key: LabelState, Value: "critical"},
					{Key: LabelDescription, Value: "too hot"},
					{Key: "core", Value: "3"},
				}
			},
			want: &riemannpb.Event{
				Time: proto.Int64(ts.Unix()), State: proto.String("critical"), Service: proto.String("cpu.util"),
				Host: proto.String("web1"), Description: proto.String("too hot"), Tags: []string{"meterkit", "prod"},
				Ttl:        proto.Float32(2.5),
				Attributes: attrs("zone", "a", "core", "3", "unit", "%", "resource_id", "cpu0", "project_id", "p1", "user_id", "u1", "kind", "gauge"),
				TimeMicros: proto.Int64(ts.UnixMicro()), MetricD: proto.Float64(42.5),
			},
		},
		{
			name: "defaults",
			enc:  defaults,
			m:    func(m *meter.Measurement) { m.Kind = meter.Cumulative },
			want: &riemannpb.Event{
				Time: proto.Int64(ts.Unix()), State: proto.String("ok"), Service: proto.String("cpu.util"),
				Host: proto.String("default-host"), Ttl: proto.Float32(60), Attributes: attrs("kind", "cumulative"),
				TimeMicros: proto.Int64(ts.UnixMicro()), MetricD: proto.Float64(42.5),
			},
		},
		{
			name: "ttl as a duration, no default state, no default ttl",
			enc:  encoder{host: "h", noTTL: true},
			m:    func(m *meter.Measurement) { m.Labels = []meter.Label{{Key: LabelTTL, Value: "1m30.25s"}} },
			want: &riemannpb.Event{
				Time: proto.Int64(ts.Unix()), Service: proto.String("cpu.util"), Host: proto.String("h"),
				Ttl: proto.Float32(90.25), Attributes: attrs("kind", "gauge"),
				TimeMicros: proto.Int64(ts.UnixMicro()), MetricD: proto.Float64(42.5),
			},
		},
		{
			name: "no ttl at all",
			enc:  encoder{host: "h", state: "ok", noTTL: true},
			m:    func(*meter.Measurement) {},
			want: &riemannpb.Event{
				Time: proto.Int64(ts.Unix()), State: proto.String("ok"), Service: proto.String("cpu.util"), Host: proto.String("h"),
				Attributes: attrs("kind", "gauge"), TimeMicros: proto.Int64(ts.UnixMicro()), MetricD: proto.Float64(42.5),
			},
		},
		{
			name: "fields win over labels of the same name; unknown control labels are dropped",
			enc:  defaults,
			m: func(m *meter.Measurement) {
				m.Unit, m.Value = "B", -3
				m.Labels = []meter.Label{{Key: "unit", Value: "KiB"}, {Key: "resource_id", Value: "kept"}, {Key: "riemann.future", Value: "x"}, {Key: "empty", Value: ""}}
			},
			want: &riemannpb.Event{
				Time: proto.Int64(ts.Unix()), State: proto.String("ok"), Service: proto.String("cpu.util"),
				Host: proto.String("default-host"), Ttl: proto.Float32(60),
				Attributes: attrs("resource_id", "kept", "empty", "", "unit", "B", "kind", "gauge"),
				TimeMicros: proto.Int64(ts.UnixMicro()), MetricD: proto.Float64(-3),
			},
		},
		{
			name: "meterkit.state is the state; meterkit.* labels are no attributes",
			enc:  defaults,
			m: func(m *meter.Measurement) {
				m.Labels = []meter.Label{{Key: "zone", Value: "a"}, {Key: meter.StateLabel, Value: meter.StateAlert},
					{Key: meter.ReservedPrefix + "future", Value: "x"}, {Key: "core", Value: "3"}}
			},
			want: &riemannpb.Event{
				Time: proto.Int64(ts.Unix()), State: proto.String("alert"), Service: proto.String("cpu.util"),
				Host: proto.String("default-host"), Ttl: proto.Float32(60), Attributes: attrs("zone", "a", "core", "3", "kind", "gauge"),
				TimeMicros: proto.Int64(ts.UnixMicro()), MetricD: proto.Float64(42.5),
			},
		},
		{
			name: "meterkit.state without a default state",
			enc:  encoder{host: "h", noTTL: true},
			m: func(m *meter.Measurement) {
				m.Labels = []meter.Label{{Key: meter.StateLabel, Value: meter.StateCritical}}
			},
			want: &riemannpb.Event{
				Time: proto.Int64(ts.Unix()), State: proto.String("critical"), Service: proto.String("cpu.util"), Host: proto.String("h"),
				Attributes: attrs("kind", "gauge"), TimeMicros: proto.Int64(ts.UnixMicro()), MetricD: proto.Float64(42.5),
			},
		},
		{
			name: "riemann.state wins over a later meterkit.state",
			enc:  defaults,
			m: func(m *meter.Measurement) {
				m.Labels = []meter.Label{{Key: LabelState, Value: "expired"}, {Key: meter.StateLabel, Value: meter.StateWarning}}
			},
			want: &riemannpb.Event{
				Time: proto.Int64(ts.Unix()), State: proto.String("expired"), Service: proto.String("cpu.util"),
				Host: proto.String("default-host"), Ttl: proto.Float32(60), Attributes: attrs("kind", "gauge"),
				TimeMicros: proto.Int64(ts.UnixMicro()), MetricD: proto.Float64(42.5),
			},
		},
		{
			name: "riemann.state wins over an earlier meterkit.state",
			enc:  defaults,
			m: func(m *meter.Measurement) {
				m.Labels = []meter.Label{{Key: meter.StateLabel, Value: meter.StateWarning}, {Key: LabelState, Value: "expired"}}
			},
			want: &riemannpb.Event{
				Time: proto.Int64(ts.Unix()), State: proto.String("expired"), Service: proto.String("cpu.util"),
				Host: proto.String("default-host"), Ttl: proto.Float32(60), Attributes: attrs("kind", "gauge"),
				TimeMicros: proto.Int64(ts.UnixMicro()), MetricD: proto.Float64(42.5),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			tc.m(&m)
			b, err := tc.enc.appendEvent(nil, &m)
			require.NoError(t, err)

			var got riemannpb.Msg
			require.NoError(t, proto.Unmarshal(b, protoadapt.MessageV2Of(&got)))
			require.Len(t, got.Events, 1)
			require.True(t, proto.Equal(protoadapt.MessageV2Of(tc.want), protoadapt.MessageV2Of(got.Events[0])), "got  %v\nwant %v", got.Events[0], tc.want)

			// Byte for byte what the protobuf library makes of the same Msg.
			want, err := proto.Marshal(protoadapt.MessageV2Of(&riemannpb.Msg{Events: []*riemannpb.Event{tc.want}}))
			require.NoError(t, err)
			require.Equal(t, want, b)
		})
	}
}

func TestEncodeBadTTL(t *testing.T) {
	for _, v := range []string{"abc", "-1", "NaN", "Inf", "1e40", "-5s", ""} {
		t.Run(v, func(t *testing.T) {
			e := encoder{host: "h"}
			m := meter.Measurement{Name: "x", Kind: meter.Gauge, Time: time.Unix(1, 0), Labels: []meter.Label{{Key: LabelTTL, Value: v}}}
			msg := []byte("prefix")
			out, err := e.appendEvent(msg, &m)
			require.ErrorContains(t, err, "riemann.ttl")
			require.Equal(t, "prefix", string(out), "nothing appended on error")
		})
	}
}

func TestEncodeAllocs(t *testing.T) {
	e := encoder{host: "h", state: "ok", ttl: 60, tags: []string{"a"}}
	m := meter.Measurement{Name: "disk.read.bytes", Kind: meter.Cumulative, Unit: "B", Value: 1, Time: time.Now(), ResourceID: "sda",
		Labels: []meter.Label{{Key: "mount", Value: "/"}, {Key: LabelTTL, Value: "30"}, {Key: meter.StateLabel, Value: meter.StateWarning}}}
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = e.appendEvent(buf[:0], &m)
		if err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}
