//go:build ignore

// Command lpgen writes InfluxDB line protocol to a TCP address (Telegraf's
// socket_listener) as fast as the reader takes it, or at -rate lines a
// second. Each line is one gauge, shaped like the synthetic driver's
// measurements so that both become alike Riemann events:
//
//	synthetic,kind=gauge,resource_id=slot-17,run=RUN seq=123456 1764513600123456789
//
// with values numbered 1, 2, 3, … over -slots resources. Every second it
// prints the lines written so far on standard error.
//
//	go run scripts/riemann-vs-telegraf/lpgen/main.go -addr 127.0.0.1:8094
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8094", "TCP address to write to")
	rate := flag.Int("rate", 0, "lines a second (0: as fast as the reader takes them)")
	slots := flag.Int("slots", 1000, "distinct resource_id values")
	run := flag.String("run", strconv.FormatInt(time.Now().UnixNano(), 10), "the run tag")
	flag.Parse()
	if *rate < 0 || *slots <= 0 {
		fmt.Fprintln(os.Stderr, "lpgen: -rate must be >= 0 and -slots > 0")
		os.Exit(2)
	}
	var c net.Conn
	var err error
	for range 100 { // the listener may still be starting
		if c, err = net.Dial("tcp", *addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lpgen:", err)
		os.Exit(1)
	}
	w := bufio.NewWriterSize(c, 64<<10)
	prefixes := make([][]byte, *slots)
	for i := range prefixes {
		prefixes[i] = []byte("synthetic,kind=gauge,resource_id=slot-" + strconv.Itoa(i) + ",run=" + *run + " seq=")
	}
	const chunk = 1000 // lines per time stamp and per rate check
	var (
		n     uint64
		line  []byte
		start = time.Now()
		last  = start
	)
	for {
		now := time.Now()
		if *rate > 0 {
			if ahead := time.Duration(float64(n)/float64(*rate)*float64(time.Second)) - now.Sub(start); ahead > 0 {
				time.Sleep(ahead)
				now = time.Now()
			}
		}
		ts := now.UnixNano()
		for range chunk {
			n++
			line = append(line[:0], prefixes[n%uint64(len(prefixes))]...)
			line = strconv.AppendUint(line, n, 10)
			line = append(line, ' ')
			line = strconv.AppendInt(line, ts, 10)
			line = append(line, '\n')
			if _, err := w.Write(line); err != nil {
				fmt.Fprintln(os.Stderr, "lpgen:", err)
				os.Exit(1)
			}
		}
		if now.Sub(last) >= time.Second {
			last = now
			fmt.Fprintln(os.Stderr, "lines", n)
		}
	}
}
