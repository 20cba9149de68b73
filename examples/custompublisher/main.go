// Command custompublisher shows a team's own publisher: a custom sink (here,
// one that alerts when a measurement crosses a threshold) next to a built-in
// one, composed in a few lines of the public API.
//
//	go run ./examples/custompublisher -listen tcp://127.0.0.1:7711 -threshold cpu.util=80
//	go run ./examples/agent -connect tcp://127.0.0.1:7711 -interval 2s
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink/console"
	"github.com/meterkit/meter/transport/nanomsg"
)

// alertSink prints a line for every measurement above its series' threshold.
// A sink needs no locks: the publisher never calls Write concurrently.
type alertSink struct {
	limits map[string]float64
}

func (s alertSink) Write(_ context.Context, batch []meter.Measurement) error {
	for _, m := range batch {
		if limit, ok := s.limits[m.Name]; ok && m.Value > limit {
			fmt.Printf("ALERT %s %s[%s] = %g %s (limit %g)\n", m.Host, m.Name, m.ResourceID, m.Value, m.Unit, limit)
		}
	}
	return nil
}

func (alertSink) Close(context.Context) error { return nil }

func main() {
	listen := flag.String("listen", "tcp://127.0.0.1:7711", "address to listen on")
	threshold := flag.String("threshold", "cpu.util=80,load.1=4", "name=limit pairs, comma-separated")
	quiet := flag.Bool("quiet", false, "print alerts only")
	flag.Parse()

	limits := map[string]float64{}
	for _, kv := range strings.Split(*threshold, ",") {
		name, v, ok := strings.Cut(kv, "=")
		limit, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			log.Fatalf("-threshold: want name=number, got %q", kv)
		}
		limits[name] = limit
	}
	r, err := nanomsg.Listen(*listen)
	if err != nil {
		log.Fatal(err)
	}
	opts := []publisher.Option{publisher.WithSink("alerts", alertSink{limits})}
	if !*quiet {
		con, err := console.New(os.Stdout)
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, publisher.WithSink("console", con))
	}
	p, err := publisher.New(r, opts...)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := p.Run(ctx); err != nil {
		log.Print(err)
	}
	_ = p.Close(context.Background())
}
