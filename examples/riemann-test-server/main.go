// Command riemann-test-server is a small Riemann server for trying the
// Riemann path on a laptop, where no Riemann runs: it listens, prints every
// event it receives (or counts them), and answers queries with the latest
// event of each host and service, as Riemann's index does. It is
// sink/riemann/riemanntest (the server the tests use) as a program.
//
//	go run ./examples/riemann-test-server -listen 127.0.0.1:5555
//	go run ./examples/publisher -sink riemann://127.0.0.1:5555
//	riemann-client query 'service =~ "cpu.%"' 127.0.0.1 5555
//
// -print events (the default) writes one line per event to stdout:
//
//	2026-11-30T14:00:00Z web1 cpu.util 12.5 state=ok ttl=60 tags=a,b unit=% kind=gauge
//
// -print count writes the total every -every (1s) when it changed, and
// -print none prints nothing. -udp listens on the same port over UDP too,
// -tls-cert and -tls-key make the TCP port speak TLS (riemann+tls://),
// -tls-ca requires client certificates that chain to it, -expire makes the
// index forget events past their time plus ttl. It keeps no history: what
// it printed is forgotten, only the index stays. It stops on SIGINT or
// SIGTERM and prints the total to stderr.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meterkit/meter/sink/riemann/riemanntest"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("riemann-test-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:5555", "TCP address to listen on (and UDP with -udp)")
	udp := fs.Bool("udp", false, "listen on the same port over UDP too (riemann+udp://)")
	mode := fs.String("print", "events", "events (one line each), count (the total every -every) or none")
	every := fs.Duration("every", time.Second, "how often -print count prints, and how often events are printed")
	expire := fs.Bool("expire", false, "forget events past their time plus ttl in the index, as periodically-expire does")
	cert := fs.String("tls-cert", "", "certificate (PEM): the TCP port speaks TLS")
	key := fs.String("tls-key", "", "private key (PEM) of -tls-cert")
	ca := fs.String("tls-ca", "", "require client certificates that chain to this CA (PEM)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !slices.Contains([]string{"events", "count", "none"}, *mode) {
		fmt.Fprintf(stderr, "riemann-test-server: -print %q: want events, count or none\n", *mode)
		return 2
	}
	if *every <= 0 {
		fmt.Fprintf(stderr, "riemann-test-server: -every %v: want a positive duration\n", *every)
		return 2
	}
	opts := []riemanntest.Option{riemanntest.WithAddr(*listen)}
	if *udp {
		opts = append(opts, riemanntest.WithUDP())
	}
	if *expire {
		opts = append(opts, riemanntest.WithExpiry())
	}
	if *cert != "" || *key != "" || *ca != "" {
		tc, err := tlsConfig(*cert, *key, *ca)
		if err != nil {
			fmt.Fprintf(stderr, "riemann-test-server: %v\n", err)
			return 2
		}
		opts = append(opts, riemanntest.WithTLS(tc))
	}
	srv, err := riemanntest.Listen(opts...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer srv.Close()
	fmt.Fprintf(stderr, "riemann-test-server: listening on %s", srv.Addr())
	if srv.UDPAddr() != "" {
		fmt.Fprintf(stderr, " (udp %s)", srv.UDPAddr())
	}
	fmt.Fprintln(stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	total := 0
	var buf []byte
	flush := func(last int) int {
		evs := srv.Take()
		total += len(evs)
		switch *mode {
		case "events":
			for i := range evs {
				buf = appendEvent(buf[:0], &evs[i])
				_, _ = stdout.Write(buf)
			}
		case "count":
			if total != last {
				fmt.Fprintf(stdout, "%s events %d\n", time.Now().UTC().Format(time.RFC3339), total)
			}
		}
		return total
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	last := 0
	for {
		select {
		case <-ctx.Done():
			srv.Close()
			flush(last)
			fmt.Fprintf(stderr, "riemann-test-server: stopped after %d events\n", total)
			return 0
		case <-tick.C:
			last = flush(last)
		}
	}
}

// appendEvent appends one line for e.
func appendEvent(b []byte, e *riemanntest.Event) []byte {
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, orDash(e.Host)...)
	b = append(b, ' ')
	b = append(b, orDash(e.Service)...)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, e.Metric, 'g', -1, 64)
	if e.State != "" {
		b = append(b, " state="...)
		b = append(b, e.State...)
	}
	if e.HasTTL {
		b = append(b, " ttl="...)
		b = strconv.AppendFloat(b, float64(e.TTL), 'g', -1, 32)
	}
	if len(e.Tags) > 0 {
		b = append(b, " tags="...)
		b = append(b, strings.Join(e.Tags, ",")...)
	}
	keys := make([]string, 0, len(e.Attributes))
	for k := range e.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = append(b, ' ')
		b = append(b, k...)
		b = append(b, '=')
		b = append(b, e.Attributes[k]...)
	}
	if e.Description != "" {
		b = append(b, " description="...)
		b = strconv.AppendQuote(b, e.Description)
	}
	return append(b, '\n')
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// tlsConfig loads the server's certificate and, with ca, requires client
// certificates that chain to it.
func tlsConfig(cert, key, ca string) (*tls.Config, error) {
	if cert == "" || key == "" {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert, -tls-key: %w", err)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("-tls-ca: no PEM certificate in %s", ca)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}
