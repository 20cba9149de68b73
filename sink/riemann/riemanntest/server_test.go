package riemanntest

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	riemanngo "github.com/riemann/riemann-go-client"
	riemannpb "github.com/riemann/riemann-go-client/proto"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// roundTrip sends one Msg on c and returns the reply.
func roundTrip(t *testing.T, c net.Conn, msg *riemannpb.Msg) *riemannpb.Msg {
	t.Helper()
	b, err := proto.Marshal(protoadapt.MessageV2Of(msg))
	require.NoError(t, err)
	_, err = c.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
	require.NoError(t, err)
	_, err = c.Write(b)
	require.NoError(t, err)
	var hdr [4]byte
	_, err = io.ReadFull(c, hdr[:])
	require.NoError(t, err)
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	_, err = io.ReadFull(c, body)
	require.NoError(t, err)
	reply := new(riemannpb.Msg)
	require.NoError(t, proto.Unmarshal(body, protoadapt.MessageV2Of(reply)))
	return reply
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	return c
}

func ev(host, service string, metric float64, tags ...string) *riemannpb.Event {
	return &riemannpb.Event{Host: proto.String(host), Service: proto.String(service), MetricD: proto.Float64(metric), Tags: tags,
		Attributes: []*riemannpb.Attribute{{Key: proto.String("dc"), Value: proto.String(host[:2])}}}
}

func TestRecordAndQuery(t *testing.T) {
	s := NewServer(t)
	c := dial(t, s.Addr())
	r := roundTrip(t, c, &riemannpb.Msg{Events: []*riemannpb.Event{
		ev("eu1", "api.requests", 1, "web"),
		ev("eu1", "api.requests", 2, "web"), // replaces the first in the index
		ev("us1", "api.requests", 3),
		ev("us1", "disk", 90.5, "storage"),
	}})
	require.True(t, r.GetOk())
	require.Equal(t, 4, s.Count())
	require.Equal(t, []int{4}, s.MsgSizes())

	for _, tc := range []struct {
		q    string
		want []float64 // metrics, in (host, service) order
	}{
		{`true`, []float64{2, 3, 90.5}},
		{`false`, nil},
		{`service = "api.requests"`, []float64{2, 3}},
		{`service = "api.requests" and host = "us1"`, []float64{3}},
		{`host = "eu1" or service = "disk"`, []float64{2, 90.5}},
		{`not (service = "api.requests")`, []float64{90.5}},
		{`tagged "web"`, []float64{2}},
		{`metric > 2.5`, []float64{3, 90.5}},
		{`metric <= 3 and metric >= 3`, []float64{3}},
		{`service =~ "api.%"`, []float64{2, 3}},
		{`service ~= "^d.s"`, []float64{90.5}},
		{`dc = "us"`, []float64{3, 90.5}},
		{`state = nil`, []float64{2, 3, 90.5}},
		{`description != nil`, nil},
		{`service != "disk"`, []float64{2, 3}},
	} {
		t.Run(tc.q, func(t *testing.T) {
			r := roundTrip(t, c, &riemannpb.Msg{Query: &riemannpb.Query{String_: proto.String(tc.q)}})
			require.True(t, r.GetOk(), r.GetError())
			var got []float64
			for _, e := range r.Events {
				got = append(got, e.GetMetricD())
			}
			require.Equal(t, tc.want, got)
		})
	}

	for _, q := range []string{``, `service =`, `service = "x`, `(true`, `metric =~ 3`, `tagged 3`, `true true`, `a ?? "b"`} {
		t.Run("bad "+q, func(t *testing.T) {
			r := roundTrip(t, c, &riemannpb.Msg{Query: &riemannpb.Query{String_: proto.String(q)}})
			require.False(t, r.GetOk())
			require.Contains(t, r.GetError(), "parse error in query")
		})
	}
}

func TestReject(t *testing.T) {
	s := NewServer(t)
	c := dial(t, s.Addr())
	s.Reject("go away")
	r := roundTrip(t, c, &riemannpb.Msg{Events: []*riemannpb.Event{ev("h1", "x", 1)}})
	require.False(t, r.GetOk())
	require.Equal(t, "go away", r.GetError())
	require.Zero(t, s.Count())
	s.Reject("")
	require.True(t, roundTrip(t, c, &riemannpb.Msg{Events: []*riemannpb.Event{ev("h1", "x", 1)}}).GetOk())
	require.Equal(t, 1, s.Count())
}

func TestStallForADuration(t *testing.T) {
	s := NewServer(t)
	c := dial(t, s.Addr())
	s.Stall(150 * time.Millisecond)
	start := time.Now()
	require.True(t, roundTrip(t, c, &riemannpb.Msg{Events: []*riemannpb.Event{ev("h1", "x", 1)}}).GetOk())
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	start = time.Now()
	require.True(t, roundTrip(t, c, &riemannpb.Msg{Events: []*riemannpb.Event{ev("h1", "x", 1)}}).GetOk())
	require.Less(t, time.Since(start), 100*time.Millisecond, "the stall is over")
}

func TestStallUntilRelease(t *testing.T) {
	s := NewServer(t)
	c := dial(t, s.Addr())
	s.Stall(0)
	done := make(chan *riemannpb.Msg)
	go func() {
		b, _ := proto.Marshal(protoadapt.MessageV2Of(&riemannpb.Msg{Events: []*riemannpb.Event{ev("h1", "x", 1)}}))
		_, _ = c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...))
		var hdr [4]byte
		_, _ = io.ReadFull(c, hdr[:])
		done <- nil
	}()
	select {
	case <-done:
		t.Fatal("answered while stalled")
	case <-time.After(100 * time.Millisecond):
	}
	require.Zero(t, s.Count())
	s.Release()
	<-done
	require.Equal(t, 1, s.Count())
}

func TestCrashRecordsWithoutAnswering(t *testing.T) {
	s := NewServer(t)
	c := dial(t, s.Addr())
	s.Stall(0)
	read := make(chan error)
	go func() {
		b, _ := proto.Marshal(protoadapt.MessageV2Of(&riemannpb.Msg{Events: []*riemannpb.Event{ev("h1", "x", 1), ev("h1", "y", 2)}}))
		_, _ = c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...))
		var hdr [4]byte
		_, err := io.ReadFull(c, hdr[:])
		read <- err
	}()
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.held == 1
	}, time.Second, time.Millisecond, "the server holds the Msg")
	s.Crash()
	require.ErrorIs(t, <-read, io.EOF, "no answer: the connection closed")
	require.Equal(t, 2, s.Count(), "the events were kept")
	require.NoError(t, s.Start())
	reply := roundTrip(t, dial(t, s.Addr()), &riemannpb.Msg{Events: []*riemannpb.Event{ev("h1", "z", 3)}})
	require.True(t, reply.GetOk(), "answers again after Start")
	require.Equal(t, 3, s.Count())
}

func TestStopStartDropKeepPortAndEvents(t *testing.T) {
	s := NewServer(t, WithUDP())
	addr, udp := s.Addr(), s.UDPAddr()
	c := dial(t, addr)
	require.True(t, roundTrip(t, c, &riemannpb.Msg{Events: []*riemannpb.Event{ev("h1", "x", 1)}}).GetOk())

	s.DropConnections()
	_, err := io.ReadFull(c, make([]byte, 1))
	require.Error(t, err, "connection closed")

	require.NoError(t, s.Restart())
	require.Equal(t, addr, s.Addr())
	require.Equal(t, udp, s.UDPAddr())
	c = dial(t, addr)
	require.True(t, roundTrip(t, c, &riemannpb.Msg{Events: []*riemannpb.Event{ev("h1", "x", 2)}}).GetOk())
	require.Equal(t, 2, s.Count())

	s.Stop()
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "down")
	require.NoError(t, s.Start())
	require.NoError(t, s.Start(), "already running")
	s.Reset()
	require.Zero(t, s.Count())
	require.Error(t, s.WaitFor(1, 20*time.Millisecond))
}

func TestUDPDatagrams(t *testing.T) {
	s := NewServer(t, WithUDP())
	c, err := net.Dial("udp", s.UDPAddr())
	require.NoError(t, err)
	defer c.Close()
	b, err := proto.Marshal(protoadapt.MessageV2Of(&riemannpb.Msg{Events: []*riemannpb.Event{ev("h1", "x", 1), ev("h2", "y", 2)}}))
	require.NoError(t, err)
	_, err = c.Write(b)
	require.NoError(t, err)
	require.NoError(t, s.WaitFor(2, 2*time.Second))
	require.Equal(t, "udp", s.Events()[1].Transport)
	require.Equal(t, 2.0, s.Events()[1].Metric)
}

// TestRiemannGoClient checks the server against riemann-go-client's own
// client: send, then query the index.
func TestRiemannGoClient(t *testing.T) {
	s := NewServer(t)
	c := riemanngo.NewTCPClient(s.Addr(), 5*time.Second)
	require.NoError(t, c.Connect())
	defer c.Close()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	r, err := riemanngo.SendEvent(c, &riemanngo.Event{
		Host: "web1", Service: "api.latency", Metric: 0.25, State: "warning", Time: at,
		TTL: 30 * time.Second, Tags: []string{"t"}, Attributes: map[string]string{"k": "v"}, Description: "slow",
	})
	require.NoError(t, err)
	require.True(t, r.GetOk())

	got, err := c.QueryIndex(`service = "api.latency"`)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "web1", got[0].Host)
	require.Equal(t, 0.25, got[0].Metric)
	require.True(t, at.Equal(got[0].Time))

	e := s.Events()[0]
	require.Equal(t, Event{
		Host: "web1", Service: "api.latency", State: "warning", Description: "slow", Metric: 0.25, Time: e.Time,
		TTL: 30, HasTTL: true, Tags: []string{"t"}, Attributes: map[string]string{"k": "v"}, Transport: "tcp", Proto: e.Proto,
	}, e)
	require.True(t, at.Equal(e.Time))
}

func TestExpiry(t *testing.T) {
	s := NewServer(t, WithExpiry())
	c := dial(t, s.Addr())
	now := time.Now()
	fresh := &riemannpb.Event{Host: proto.String("h"), Service: proto.String("fresh"), Ttl: proto.Float32(60),
		TimeMicros: proto.Int64(now.UnixMicro())}
	stale := &riemannpb.Event{Host: proto.String("h"), Service: proto.String("stale"), Ttl: proto.Float32(0.5),
		TimeMicros: proto.Int64(now.Add(-time.Second).UnixMicro())}
	forever := &riemannpb.Event{Host: proto.String("h"), Service: proto.String("no-ttl"),
		TimeMicros: proto.Int64(now.Add(-time.Hour).UnixMicro())}
	require.True(t, roundTrip(t, c, &riemannpb.Msg{Events: []*riemannpb.Event{fresh, stale, forever}}).GetOk())
	reply := roundTrip(t, c, &riemannpb.Msg{Query: &riemannpb.Query{String_: proto.String("true")}})
	var got []string
	for _, e := range reply.GetEvents() {
		got = append(got, e.GetService())
	}
	require.Equal(t, []string{"fresh", "no-ttl"}, got, "the expired event is gone from the index")
	require.Equal(t, 3, s.Count(), "but was recorded")
}
