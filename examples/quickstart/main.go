// Command quickstart meters this host end to end in one process: host
// drivers feed an agent, the agent sends batches over real nanomsg TCP on
// 127.0.0.1 to a publisher, and the publisher prints every measurement on
// the console until Ctrl-C. The same publisher serves a live view of what
// passes through it (sink/web): the line "live view: http://…/" says where.
//
//	go run ./examples/quickstart
//	go run ./examples/quickstart -format json -interval 5s
//	go run ./examples/quickstart -http ""     # no live view
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/driver"
	_ "github.com/meterkit/meter/driver/host" // registers cpu, memory, load, ...
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink/console"
	"github.com/meterkit/meter/sink/web"
	"github.com/meterkit/meter/transport/nanomsg"
)

func main() {
	interval := flag.Duration("interval", 2*time.Second, "how often each driver collects")
	drivers := flag.String("drivers", "cpu,memory,swap,load,disk,filesystem,network,uptime,processes", "drivers to run, comma-separated")
	format := flag.String("format", "text", "console format: text or json")
	httpAddr := flag.String("http", "127.0.0.1:7070", "address of the live view (a free port if this one is taken; \"\" for none)")
	flag.Parse()
	f, err := console.ParseFormat(*format)
	if err != nil {
		log.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	addr := "tcp://" + freeLoopbackAddr()
	recv, err := nanomsg.Listen(addr, nanomsg.WithLogger(logger))
	if err != nil {
		log.Fatal(err)
	}
	con, err := console.New(os.Stdout, console.WithFormat(f))
	if err != nil {
		log.Fatal(err)
	}
	popts := []publisher.Option{publisher.WithLogger(logger), publisher.WithSink("console", con)}
	if *httpAddr != "" {
		view, err := liveView(*httpAddr)
		if err != nil {
			log.Fatal(err)
		}
		popts = append(popts, publisher.WithSink("web", view))
		// On a line of its own, without the log prefix, for people and scripts.
		fmt.Fprintf(os.Stderr, "live view: http://%s/\n", view.Addr())
	}
	pub, err := publisher.New(recv, popts...)
	if err != nil {
		log.Fatal(err)
	}
	send, err := nanomsg.Dial([]string{addr}, nanomsg.WithLogger(logger))
	if err != nil {
		log.Fatal(err)
	}
	opts := []agent.Option{agent.WithLogger(logger), agent.WithBatch(1000, 200*time.Millisecond)}
	for _, name := range strings.Split(*drivers, ",") {
		opts = append(opts, agent.WithNamedDriver(strings.TrimSpace(name), driver.Config{}, agent.Interval(*interval)))
	}
	a, err := agent.New(send, opts...)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("metering this host every %v; agent -> %s -> publisher -> console (Ctrl-C to stop)", *interval, addr)

	// The publisher outlives the agent so that the agent can drain into it.
	pubCtx, stopPub := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := pub.Run(pubCtx); err != nil {
			log.Print(err)
		}
	})
	if err := a.Run(ctx); err != nil {
		log.Print(err)
	}
	stopPub()
	wg.Wait()
	_ = a.Close(context.Background())
	_ = pub.Close(context.Background())
	st := a.Stats()
	log.Printf("stopped: %d measurements collected, %d acknowledged by the publisher", st.Added, st.AckedMeasurements)
}

// liveView starts the web sink at addr, or at a free port on the same host
// when addr is taken.
func liveView(addr string) (*web.Sink, error) {
	view, err := web.New(web.WithAddr(addr))
	if err != nil {
		return nil, err
	}
	if err := view.Start(context.Background()); err == nil {
		return view, nil
	}
	_ = view.Close(context.Background())
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-http %s: %w", addr, err)
	}
	view, err = web.New(web.WithAddr(net.JoinHostPort(host, "0")))
	if err != nil {
		return nil, err
	}
	if err := view.Start(context.Background()); err != nil {
		return nil, err
	}
	return view, nil
}

// freeLoopbackAddr asks the kernel for a free port on 127.0.0.1.
func freeLoopbackAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
