//go:build ignore

// Command genfixture writes spool files with the code of this commit, as
// fixtures for the upgrade test of the unified spool.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func ms(prefix string, n int) []meter.Measurement {
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var out []meter.Measurement
	for i := range n {
		m := meter.Measurement{Name: fmt.Sprintf("%s.%d", prefix, i), Kind: meter.Gauge, Unit: "B",
			Value: float64(i)*1.5 + 0.25, Time: base.Add(time.Duration(i) * time.Second), Host: "fixture-host",
			ResourceID: fmt.Sprintf("res-%d", i%3)}
		if i%2 == 0 {
			m.Labels = []meter.Label{{Key: "disk", Value: fmt.Sprintf("sd%c", 'a'+i)}}
		}
		if i%4 == 3 {
			m.Host = "other-host"
			m.Kind = meter.Cumulative
			m.ProjectID, m.UserID = "proj", "user"
		}
		out = append(out, m)
	}
	return out
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func writeJSON(path string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	must(err)
	must(os.WriteFile(path, b, 0o644))
}

func copyFile(dst, src string) {
	b, err := os.ReadFile(src)
	must(err)
	must(os.WriteFile(dst, b, 0o600))
}

func main() {
	out := os.Args[1]
	work, err := os.MkdirTemp("", "genfixture")
	must(err)

	// Agent: 10 measurements in batches of 3, the publisher answering retry.
	{
		s, r := transport.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				d, err := r.Receive(ctx)
				if err != nil {
					return
				}
				_ = d.Ack(transport.Ack{Status: transport.StatusRetry, Message: "store down"})
			}
		}()
		a, err := agent.New(s, agent.WithLogger(quiet), agent.WithID("fixture-agent"), agent.WithTenant("t1"),
			agent.WithHost("fixture-host"), agent.WithBatch(3, time.Hour), agent.WithSpool(filepath.Join(work, "agent")),
			agent.WithBackoff(time.Millisecond, 2*time.Millisecond), agent.WithDrainTimeout(30*time.Millisecond))
		must(err)
		actx, acancel := context.WithCancel(context.Background())
		adone := make(chan error, 1)
		go func() { adone <- a.Run(actx) }()
		want := ms("agent", 10)
		must(a.Add(want...))
		time.Sleep(50 * time.Millisecond)
		acancel()
		must(<-adone)
		cancel()
		<-done
		s.Close()
		must(os.MkdirAll(filepath.Join(out, "agent"), 0o755))
		copyFile(filepath.Join(out, "agent", "agent.spool"), filepath.Join(work, "agent", "agent.spool"))
		writeJSON(filepath.Join(out, "agent", "want.json"), want)
	}

	// Publisher: 5 batches from t1/fixture-agent seqs 101..105 in lanes "keep"
	// (its store down) and "half" (its store takes two batches, then fails);
	// the files are copied while the publisher holds them, as after kill -9.
	{
		s, r := transport.Pipe()
		half := &failAfter{n: 2}
		p, err := publisher.New(r, publisher.WithLogger(quiet), publisher.WithSink("keep", failing{}),
			publisher.WithSink("half", half), publisher.WithSpool(filepath.Join(work, "publisher")),
			publisher.WithBackoff(time.Hour, time.Hour))
		must(err)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { _ = p.Run(ctx) }()
		var batches [][]meter.Measurement
		for i := range 5 {
			b := ms(fmt.Sprintf("pub%d", i), 2+i)
			batches = append(batches, b)
			env := &transport.Envelope{Tenant: "t1", Agent: "fixture-agent", Seq: uint64(101 + i),
				SentAt: time.Date(2026, 11, 30, 12, 1, i, 0, time.UTC), Host: "fixture-host", Measurements: b}
			must(s.Send(context.Background(), env))
		}
		for p.Stats().SinkRetries < 2 || half.rec.Batches() < 2 {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		must(os.MkdirAll(filepath.Join(out, "publisher"), 0o755))
		for _, f := range []string{"publisher.spool", "publisher.delivered"} {
			copyFile(filepath.Join(out, "publisher", f), filepath.Join(work, "publisher", f))
		}
		writeJSON(filepath.Join(out, "publisher", "want.json"), map[string]any{
			"batches": batches, "half_delivered": half.rec.Measurements(),
		})
		_ = cancel
		fmt.Println("stats", p.Stats().SinkRetries, half.rec.Batches())
		os.Exit(0) // as if killed: no Close, marks stay in their file
	}
}

type failing struct{}

func (failing) Write(context.Context, []meter.Measurement) error { return errors.New("store down") }
func (failing) Close(context.Context) error                      { return nil }

type failAfter struct {
	n   int32
	cnt atomic.Int32
	rec sink.Recorder
}

func (f *failAfter) Write(ctx context.Context, b []meter.Measurement) error {
	if f.cnt.Add(1) > f.n {
		return errors.New("store down")
	}
	return f.rec.Write(ctx, b)
}
func (f *failAfter) Close(context.Context) error { return nil }
