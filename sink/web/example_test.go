package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink/web"
)

// A web sink keeps what it is given and serves it; here through its
// Handler, in a program that runs its own HTTP server.
func Example() {
	s, err := web.New(web.WithMaxBytes(1 << 20))
	if err != nil {
		panic(err)
	}
	defer s.Close(context.Background())
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	_ = s.Write(context.Background(), []meter.Measurement{
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12.5, Time: at, Host: "web-1", ResourceID: "cpu0"},
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 14, Time: at.Add(10 * time.Second), Host: "web-1", ResourceID: "cpu0"},
	})
	fmt.Printf("%d series, %d points\n", s.Stats().Series, s.Stats().Points)

	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/api/series?host=web-1")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Print(string(b))
	// Output:
	// 1 series, 2 points
	// {"series":[{"id":1,"name":"cpu.util","host":"web-1","resource_id":"cpu0","labels":{},"unit":"%","kind":"gauge","points":2,"last":{"time":"2026-11-30T12:00:10Z","value":14}}],"position":2}
}
