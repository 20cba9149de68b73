package riemann_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/riemann"
	"github.com/meterkit/meter/sink/riemann/riemanntest"
)

// Send two measurements to a Riemann server (here riemanntest's) and look at
// the events it received.
func Example() {
	srv, err := riemanntest.Listen()
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	s, err := riemann.New(srv.Addr(), riemann.WithTags("meterkit"), riemann.WithTTL(90*time.Second))
	if err != nil {
		panic(err)
	}
	defer s.Close(context.Background())

	at := time.Date(2026, 11, 21, 10, 0, 0, 250_000, time.UTC)
	batch := []meter.Measurement{
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 97.5, Time: at, Host: "web1", ResourceID: "cpu0",
			Labels: []meter.Label{{Key: "core", Value: "0"}, {Key: riemann.LabelState, Value: "critical"}}},
		{Name: "net.rx.bytes", Kind: meter.Cumulative, Unit: "B", Value: 123456, Time: at, Host: "web1",
			Labels: []meter.Label{{Key: riemann.LabelTTL, Value: "2.5"}}},
	}
	if err := s.Write(context.Background(), batch); err != nil {
		panic(err)
	}
	for _, e := range srv.Events() {
		fmt.Printf("%s %s metric=%g state=%s ttl=%g time=%s tags=%v\n  attributes=%v\n",
			e.Host, e.Service, e.Metric, e.State, e.TTL, e.Time.UTC().Format(time.RFC3339Nano), e.Tags, e.Attributes)
	}

	// A server that refuses events makes Write fail permanently.
	srv.Reject("no room")
	err = s.Write(context.Background(), batch)
	var refused *riemann.RefusedError
	fmt.Println(sink.IsPermanent(err), errors.As(err, &refused), refused.Reason)
	// Output:
	// web1 cpu.util metric=97.5 state=critical ttl=90 time=2026-11-21T10:00:00.00025Z tags=[meterkit]
	//   attributes=map[core:0 kind:gauge resource_id:cpu0 unit:%]
	// web1 net.rx.bytes metric=123456 state=ok ttl=2.5 time=2026-11-21T10:00:00.00025Z tags=[meterkit]
	//   attributes=map[kind:cumulative unit:B]
	// true true no room
}

// Open the sink by URL, as the reference binaries do from their
// configuration.
func Example_url() {
	srv, err := riemanntest.Listen(riemanntest.WithUDP())
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	ctx := context.Background()
	s, err := sink.Open(ctx, "riemann+udp://"+srv.UDPAddr()+"?ttl=30&tag=a&tag=b&host=collector1")
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)
	err = s.Write(ctx, []meter.Measurement{{Name: "load.1", Kind: meter.Gauge, Value: 0.5, Time: time.Unix(1, 0)}})
	if err != nil {
		panic(err)
	}
	if err := srv.WaitFor(1, 5*time.Second); err != nil { // UDP: no reply to wait for
		panic(err)
	}
	e := srv.Events()[0]
	fmt.Println(e.Host, e.Service, e.Metric, e.TTL, e.Tags, e.Transport)

	_, err = sink.Open(ctx, "riemann://riemann.example:5555?batch=lots")
	fmt.Println(err)
	// Output:
	// collector1 load.1 0.5 30 [a b] udp
	// sink: open riemann://riemann.example:5555?batch=lots: riemann: parameter batch: "lots" is not a whole number >= 1
}
