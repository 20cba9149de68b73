//go:build ignore

// Command riemanncount is a Riemann server that counts the events it
// receives: sink/riemann/riemanntest (the protocol as the real server
// speaks it over TCP, each Msg answered ok=true), listening on -addr, with a
// line on standard output every -every:
//
//	listening 127.0.0.1:40123
//	count 1764513600123456789 182000 183
//
// giving the time (Unix nanoseconds), the events and the Msgs received since
// the start. riemanntest keeps every event it records; to stay small over a
// long run this command takes the count and forgets them on every tick. The
// count and the forgetting are two calls, so a Msg recorded between them is
// not counted: at most one Msg per connection per tick (a few hundred events
// in a tick of hundreds of thousands), and the same for every client.
//
//	go run scripts/riemann-vs-telegraf/riemanncount/main.go -addr 127.0.0.1:5555
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/meterkit/meter/sink/riemann/riemanntest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "TCP address to listen on")
	every := flag.Duration("every", 250*time.Millisecond, "print the counts this often")
	flag.Parse()
	if *every <= 0 {
		fmt.Fprintln(os.Stderr, "riemanncount: -every must be positive")
		os.Exit(2)
	}
	srv, err := riemanntest.Listen(riemanntest.WithAddr(*addr))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer srv.Close()
	fmt.Println("listening", srv.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	t := time.NewTicker(*every)
	defer t.Stop()
	var events, msgs int
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		n, sizes := srv.Count(), srv.MsgSizes()
		srv.Reset()
		events += n
		msgs += len(sizes)
		fmt.Println("count", time.Now().UnixNano(), events, msgs)
	}
}
