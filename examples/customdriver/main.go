// Command customdriver runs the driver of docs/writing-a-driver.md — it
// counts the files of a directory — in an agent that delivers to a
// publisher printing to the console, all in one process.
//
//	go run ./examples/customdriver -dir /var/spool/postfix/deferred -interval 5s
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/driver"
	_ "github.com/meterkit/meter/examples/customdriver/dircount" // registers "dircount"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink/console"
	"github.com/meterkit/meter/transport"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory to count")
	interval := flag.Duration("interval", 2*time.Second, "collection interval")
	flag.Parse()

	cfg, err := driver.ConfigFrom(map[string]string{"dir": *dir})
	if err != nil {
		log.Fatal(err)
	}
	send, recv := transport.Pipe() // one process; use transport/nanomsg across machines
	con, err := console.New(os.Stdout)
	if err != nil {
		log.Fatal(err)
	}
	pub, err := publisher.New(recv, publisher.WithSink("console", con))
	if err != nil {
		log.Fatal(err)
	}
	a, err := agent.New(send, agent.WithBatch(100, 100*time.Millisecond),
		agent.WithNamedDriver("dircount", cfg, agent.Interval(*interval)))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pubCtx, stopPub := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = pub.Run(pubCtx); close(done) }()
	if err := a.Run(ctx); err != nil {
		log.Print(err)
	}
	stopPub()
	<-done
	_ = a.Close(context.Background()) // closes send, and so both ends of the pipe
	_ = pub.Close(context.Background())
}
