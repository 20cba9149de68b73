package publisher_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport/nanomsg"
)

// hostBatch is 1,000 typical host measurements: a dozen series over a few
// dozen resources, units, a label on some.
func hostBatch() []meter.Measurement {
	names := []struct{ name, unit string }{
		{"cpu.util", "%"}, {"cpu.time", "s"}, {"memory.used", "B"}, {"disk.read.bytes", "B"},
		{"disk.write.bytes", "B"}, {"network.rx.bytes", "B"}, {"network.tx.bytes", "B"},
		{"filesystem.used", "B"}, {"load.1", ""}, {"network.rx.packets", "{packet}"},
	}
	at := time.Now()
	ms := make([]meter.Measurement, 1000)
	for i := range ms {
		n := names[i%len(names)]
		ms[i] = meter.Measurement{Name: n.name, Kind: meter.Gauge, Unit: n.unit, Value: float64(i) * 1.5,
			Time: at, ResourceID: "dev" + strconv.Itoa(i%32)}
		if i%3 == 0 {
			ms[i].Labels = []meter.Label{{Key: "mode", Value: "user"}}
		}
	}
	return ms
}

func rssKiB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// BenchmarkAgentToPublisherTCP moves batches of 1,000 measurements from an
// agent through nanomsg REQ/REP over loopback TCP into a publisher writing
// to a discard sink. One op is one measurement delivered and acknowledged.
// The spools variant spools on both sides (fsync on every batch).
func BenchmarkAgentToPublisherTCP(b *testing.B) {
	for _, inflight := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			benchAgentToPublisher(b, inflight, false)
		})
	}
	for _, inflight := range []int{1, 4} {
		b.Run(fmt.Sprintf("spools/inflight=%d", inflight), func(b *testing.B) {
			benchAgentToPublisher(b, inflight, true)
		})
	}
}

func benchAgentToPublisher(b *testing.B, inflight int, spools bool) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	l.Close()
	recv, err := nanomsg.Listen(addr, nanomsg.WithLogger(quiet), nanomsg.WithConcurrency(inflight))
	if err != nil {
		b.Fatal(err)
	}
	popts := []publisher.Option{publisher.WithLogger(quiet), publisher.WithSink("discard", sink.Discard),
		publisher.WithWorkers(inflight)}
	aopts := []agent.Option{agent.WithLogger(quiet), agent.WithHost("bench-host"),
		agent.WithBatch(1000, time.Second), agent.WithInFlight(inflight), agent.WithQueue(64)}
	if spools {
		popts = append(popts, publisher.WithSpool(b.TempDir()))
		aopts = append(aopts, agent.WithSpool(b.TempDir()))
	}
	p, err := publisher.New(recv, popts...)
	if err != nil {
		b.Fatal(err)
	}
	send, err := nanomsg.Dial([]string{addr}, nanomsg.WithLogger(quiet), nanomsg.WithConcurrency(inflight))
	if err != nil {
		b.Fatal(err)
	}
	a, err := agent.New(send, aopts...)
	if err != nil {
		b.Fatal(err)
	}
	pctx, stopPub := context.WithCancel(context.Background())
	pdone := make(chan struct{})
	go func() { _ = p.Run(pctx); close(pdone) }()
	actx, stopAgent := context.WithCancel(context.Background())
	adone := make(chan struct{})
	go func() { _ = a.Run(actx); close(adone) }()

	batch := hostBatch()
	// Warm up: the connection, buffers and pools.
	for range 20 {
		_ = a.Add(batch...)
	}
	for a.Stats().AckedMeasurements < 20_000 {
		time.Sleep(time.Millisecond)
	}
	rssBefore := rssKiB()
	b.ReportAllocs()
	b.ResetTimer()
	// Whole batches only, so that no partial batch waits for its age.
	batches := (b.N + len(batch) - 1) / len(batch)
	want := uint64(20_000 + batches*len(batch))
	for range batches {
		_ = a.Add(batch...)
		for a.Stats().Queued > 32 { // keep the queue from overflowing
			time.Sleep(50 * time.Microsecond)
		}
	}
	for a.Stats().AckedMeasurements < want || p.Stats().Pending > 0 {
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(batches*len(batch))/b.Elapsed().Seconds(), "measurements/s")
	b.ReportMetric(float64(rssKiB()-rssBefore), "RSS-growth-KiB")
	b.ReportMetric(float64(rssKiB()), "RSS-KiB")
	stopAgent()
	<-adone
	stopPub()
	<-pdone
	_ = send.Close()
	_ = p.Close(context.Background())
	if st := a.Stats(); st.Dropped > 0 || st.Rejected > 0 {
		b.Fatalf("lost batches: %+v", st)
	}
}
