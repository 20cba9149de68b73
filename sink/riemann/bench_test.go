package riemann_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	riemanngo "github.com/riemann/riemann-go-client"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/riemann"
)

// countingServer speaks Riemann's TCP framing and answers every Msg ok=true,
// counting events without decoding them, so that the benchmarks below
// measure the clients, not the server.
type countingServer struct {
	ln     net.Listener
	events atomic.Int64
	wg     sync.WaitGroup
}

// okReply is a framed Msg{ok: true}.
var okReply = func() []byte {
	msg := protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(msg))), msg...)
}()

func startCountingServer(b *testing.B) *countingServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &countingServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				s.serve(c)
			}()
		}
	}()
	b.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return s
}

func (s *countingServer) serve(c net.Conn) {
	var hdr [4]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		var events int64
		for b := buf; len(b) > 0; {
			num, typ, n := protowire.ConsumeField(b)
			if n < 0 {
				return
			}
			if num == 6 && typ == protowire.BytesType {
				events++
			}
			b = b[n:]
		}
		s.events.Add(events)
		if _, err := c.Write(okReply); err != nil {
			return
		}
	}
}

const benchBatch = 1000

var benchTime = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// BenchmarkSink sends batches of 1,000 measurements through our Sink.
func BenchmarkSink(b *testing.B) {
	b.Run("Write", func(b *testing.B) { benchSink(b, false) })
	// WriteFrom with receipts: one receipt event more per Msg, as the
	// publisher writes when the sink has WithReceipts.
	b.Run("WriteFrom+receipts", func(b *testing.B) { benchSink(b, true) })
}

func benchSink(b *testing.B, receipts bool) {
	srv := startCountingServer(b)
	opts := []riemann.Option{riemann.WithDefaultHost("web1"), riemann.WithTags("meterkit")}
	if receipts {
		opts = append(opts, riemann.WithReceipts(10*time.Minute))
	}
	s, err := riemann.New(srv.ln.Addr().String(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	batch := make([]meter.Measurement, benchBatch)
	for i := range batch {
		batch[i] = meter.Measurement{
			Name: "svc." + strconv.Itoa(i%50), Kind: meter.Gauge, Unit: "%", Value: float64(i), Time: benchTime,
			Host: "web1", Labels: []meter.Label{{Key: "seq", Value: strconv.Itoa(i)}},
		}
	}
	ctx := context.Background()
	id := sink.BatchID{Tenant: "acme", Agent: "web1"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if receipts {
			id.Seq = uint64(i)
			err = s.WriteFrom(ctx, id, 0, batch)
		} else {
			err = s.Write(ctx, batch)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if receipts {
		srv.events.Add(-int64(b.N)) // one receipt per Msg
	}
	report(b, srv)
}

// BenchmarkBareClient sends the same events, batched the same way, with
// riemann-go-client alone (NewTCPClient, SendEvents): the baseline.
func BenchmarkBareClient(b *testing.B) {
	srv := startCountingServer(b)
	c := riemanngo.NewTCPClient(srv.ln.Addr().String(), 10*time.Second)
	if err := c.Connect(); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	events := make([]riemanngo.Event, benchBatch)
	for i := range events {
		events[i] = riemanngo.Event{
			Service: "svc." + strconv.Itoa(i%50), Metric: float64(i), Time: benchTime, Host: "web1",
			State: "ok", TTL: 60 * time.Second, Tags: []string{"meterkit"},
			Attributes: map[string]string{"seq": strconv.Itoa(i), "unit": "%", "kind": "gauge"},
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r, err := riemanngo.SendEvents(c, &events)
		if err != nil {
			b.Fatal(err)
		}
		if !r.GetOk() {
			b.Fatal(r.GetError())
		}
	}
	b.StopTimer()
	report(b, srv)
}

func report(b *testing.B, srv *countingServer) {
	if got, want := srv.events.Load(), int64(b.N*benchBatch); got != want {
		b.Fatalf("server counted %d events, want %d", got, want)
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
}
