package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink/web"
	"github.com/meterkit/meter/transport"
)

// A publisher with a web sink serves the view from the start of its run,
// before the first batch: Run starts the server (the Sink is a
// sink.Starter) and Close stops it.
func Example_publisher() {
	view, err := web.New(web.WithAddr("127.0.0.1:0"))
	if err != nil {
		panic(err)
	}
	send, recv := transport.Pipe()
	p, err := publisher.New(recv, publisher.WithSink("web", view))
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for !p.Serving() {
		time.Sleep(time.Millisecond)
	}
	get := func(path string) string {
		resp, err := http.Get("http://" + view.Addr() + path)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	fmt.Print(get("/api/series"))

	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	err = send.Send(ctx, &transport.Envelope{Version: transport.Version, Agent: "a1", Seq: 1, SentAt: at,
		Measurements: []meter.Measurement{{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 7, Time: at, Host: "web-1"}}})
	if err != nil {
		panic(err)
	}
	fmt.Print(get("/api/series?host=web-1"))

	stop()
	if err := <-done; err != nil {
		panic(err)
	}
	if err := p.Close(context.Background()); err != nil {
		panic(err)
	}
	_, err = http.Get("http://" + view.Addr() + "/")
	fmt.Println("served after Close:", err == nil)
	// Output:
	// {"series":[],"position":0}
	// {"series":[{"id":1,"name":"cpu.util","host":"web-1","resource_id":"","labels":{},"unit":"%","kind":"gauge","points":1,"last":{"time":"2026-11-30T12:00:00Z","value":7}}],"position":1}
	// served after Close: false
}
