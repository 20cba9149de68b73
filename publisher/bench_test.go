package publisher_test

import (
	"context"
	"encoding/json"
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
	"github.com/meterkit/meter/stage"
	_ "github.com/meterkit/meter/stage/levels"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/seal"
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
// With sealed=true, every envelope is sealed with the tenant's key and
// opened by the publisher's receiver (package transport/seal). The spools
// variant spools on both sides (fsync on every batch). The stages variant
// runs select + unit + levels in the agent and select + unit in the
// publisher (benchStages), every measurement kept; compare it with
// sealed=false at the same inflight, same run (target: at least 80%).
//
// The frame=64KiB variants run the plain and the stages paths with frames
// of at most 64 KiB (nanomsg.WithMaxFrameSize on both ends), the largest
// mangos takes from its message pools instead of allocating on each send
// and receive. A batch of hostBatch is 52 KB on the wire, and 54 KB with
// the stages: levels' meterkit.state label takes 2 bytes a measurement in
// envelope version 2, which the agent writes once the publisher's first
// ack says it reads it (23 bytes as a label, in version 1: 75 KB). The
// nanomsg Sender prefers frames of at most 64 KiB
// (transport.FramePreferrer) and the agent cuts its batches to that even
// under the default 4 MiB limit, so that a batch does not cost two fresh
// buffers; the frame=64KiB variants show that a limit of that size changes
// nothing more. The batch age is 5 ms in every variant, so that the
// partial batch behind the last whole one does not wait a second.
func BenchmarkAgentToPublisherTCP(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		for _, inflight := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("sealed=%t/inflight=%d", sealed, inflight), func(b *testing.B) {
				benchAgentToPublisher(b, inflight, benchPath{sealed: sealed})
			})
		}
	}
	for _, inflight := range []int{1, 4} {
		b.Run(fmt.Sprintf("spools/inflight=%d", inflight), func(b *testing.B) {
			benchAgentToPublisher(b, inflight, benchPath{spools: true})
		})
	}
	for _, inflight := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("stages/inflight=%d", inflight), func(b *testing.B) {
			benchAgentToPublisher(b, inflight, benchPath{stages: true})
		})
	}
	// The agent's chain only (select + unit + levels, once, where levels
	// belongs), the publisher without stages.
	for _, inflight := range []int{1, 4} {
		b.Run(fmt.Sprintf("stages=agent/inflight=%d", inflight), func(b *testing.B) {
			benchAgentToPublisher(b, inflight, benchPath{stages: true, agentOnly: true})
		})
	}
	for _, stages := range []bool{false, true} {
		for _, inflight := range []int{1, 4} {
			name := "plain"
			if stages {
				name = "stages"
			}
			b.Run(fmt.Sprintf("frame=64KiB/%s/inflight=%d", name, inflight), func(b *testing.B) {
				benchAgentToPublisher(b, inflight, benchPath{stages: stages, frame: benchFrame})
			})
		}
	}
}

// benchFrame is the frame limit of the frame=64KiB variants: the largest
// mangos v3 pools (a message under 65,536 bytes, with the 4 bytes of the
// REQ/REP header on receipt), less some room.
const benchFrame = 64<<10 - 64

// benchStages are the stages of the stages variant, as -stages files
// would give them: the agent's keep every meter of hostBatch, convert the
// byte meters to MiB and check every measurement against levels (each gets
// the meterkit.state label; the thresholds are above hostBatch's values, a
// steady host: a change would add measurements past the last whole batch,
// which then waits for its age); the publisher's keep every meter again and
// convert MiB to GiB.
const benchAgentStages, benchPublisherStages = `[
	{"type": "select", "meters": ["cpu.*", "memory.*", "disk.*", "network.*", "filesystem.*", "load.*", "!other.*"]},
	{"type": "unit", "meters": ["memory.*", "disk.*", "network.*", "filesystem.*"], "from": "B", "to": "MiB"},
	{"type": "levels", "meters": ["*"], "warning": 1e6, "critical": 2e6, "hysteresis": 5}
]`, `[
	{"type": "select", "meters": ["*", "!other.*"]},
	{"type": "unit", "meters": ["memory.*", "disk.*", "network.*", "filesystem.*"], "from": "MiB", "to": "GiB"}
]`

func benchSpecs(tb testing.TB, js string) []stage.Spec {
	var specs []stage.Spec
	if err := json.Unmarshal([]byte(js), &specs); err != nil {
		tb.Fatal(err)
	}
	return specs
}

// benchPath says what the benchmark's path holds besides the transport.
type benchPath struct {
	sealed bool // seal and open every envelope
	spools bool // spool on both sides
	stages bool // run benchStages on both sides
	// agentOnly runs the agent's benchStages only (with stages)
	agentOnly bool
	frame     int // the frame limit on both sides; the default when 0
}

func benchAgentToPublisher(b *testing.B, inflight int, path benchPath) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	l.Close()
	recv, send, err := benchPair(addr, inflight, path.sealed, path.frame)
	if err != nil {
		b.Fatal(err)
	}
	popts := []publisher.Option{publisher.WithLogger(quiet), publisher.WithSink("discard", sink.Discard),
		publisher.WithWorkers(inflight)}
	// Batches cut by bytes (the stages' frames are larger than the 64 KiB
	// nanomsg prefers) leave a partial one behind the last whole batch:
	// a short age sends it on, the same for every variant.
	age := 5 * time.Millisecond
	aopts := []agent.Option{agent.WithLogger(quiet), agent.WithHost("bench-host"), agent.WithTenant("acme"),
		agent.WithBatch(1000, age), agent.WithInFlight(inflight), agent.WithQueue(64)}
	if path.spools {
		popts = append(popts, publisher.WithSpool(b.TempDir()))
		aopts = append(aopts, agent.WithSpool(b.TempDir()))
	}
	if path.stages {
		if !path.agentOnly {
			popts = append(popts, publisher.WithStages(benchSpecs(b, benchPublisherStages)))
		}
		aopts = append(aopts, agent.WithStages(benchSpecs(b, benchAgentStages)))
	}
	p, err := publisher.New(recv, popts...)
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
	rssBefore, batchesBefore := rssKiB(), a.Stats().Batches
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
	// With stages, what is sent and acknowledged is the stages' output.
	for st := a.Stats(); st.AckedMeasurements < max(want, st.StagedOut) || p.Stats().Pending > 0; st = a.Stats() {
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(batches*len(batch))/b.Elapsed().Seconds(), "measurements/s")
	b.ReportMetric(float64(batches*len(batch))/float64(a.Stats().Batches-batchesBefore), "measurements/batch")
	b.ReportMetric(float64(rssKiB()-rssBefore), "RSS-growth-KiB")
	b.ReportMetric(float64(rssKiB()), "RSS-KiB")
	stopAgent()
	<-adone
	stopPub()
	<-pdone
	_ = a.Close(context.Background())
	_ = p.Close(context.Background())
	if st := a.Stats(); st.Dropped > 0 || st.Rejected > 0 {
		b.Fatalf("lost batches: %+v", st)
	}
	if path.stages {
		if st := p.Stats(); !path.agentOnly && (st.StageErrors > 0 || st.Staged == 0 || st.Filtered > 0) {
			b.Fatalf("publisher stages: %+v", st)
		}
		if st := a.Stats(); st.StageErrors > 0 || st.StagedOut != st.Staged {
			b.Fatalf("agent stages: %+v", st)
		}
	}
}

// benchPair listens at addr and dials it, sealing with a fresh key of
// tenant acme when sealed, with frames up to frame bytes (the default when
// 0).
func benchPair(addr string, inflight int, sealed bool, frame int) (transport.Receiver, transport.Sender, error) {
	recv, err := nanomsg.Listen(addr, nanomsg.WithLogger(quiet), nanomsg.WithConcurrency(inflight), nanomsg.WithMaxFrameSize(frame))
	if err != nil {
		return nil, nil, err
	}
	send, err := nanomsg.Dial([]string{addr}, nanomsg.WithLogger(quiet), nanomsg.WithConcurrency(inflight), nanomsg.WithMaxFrameSize(frame))
	if err != nil {
		recv.Close()
		return nil, nil, err
	}
	if sealed {
		key, err := seal.NewKey("k1")
		if err != nil {
			return nil, nil, err
		}
		kr, err := seal.NewKeyring(&seal.KeyFile{Tenants: map[string]*seal.TenantKeys{"acme": {Keys: []seal.Key{key}}}})
		if err != nil {
			return nil, nil, err
		}
		sl, err := seal.NewSealer("acme", key)
		if err != nil {
			return nil, nil, err
		}
		o, err := seal.NewOpener(kr)
		if err != nil {
			return nil, nil, err
		}
		return seal.NewReceiver(recv, o, seal.WithLogger(quiet)), seal.NewSender(send, sl), nil
	}
	return recv, send, nil
}
