package nanomsg_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/rep"
	"go.nanomsg.org/mangos/v3/protocol/req"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
)

const batchSize = 1000

// hostBatch returns n measurements like those the host drivers produce: a
// few dozen series per device, two labels, the envelope's host.
func hostBatch(n int) *transport.Envelope {
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	env := &transport.Envelope{Tenant: "acme", Agent: "agent-web-1", Seq: 1, SentAt: at, Host: "web-1.example.net"}
	names := []struct{ name, unit string }{
		{"cpu.time.user", "s"}, {"cpu.time.system", "s"}, {"memory.used", "B"}, {"disk.read.bytes", "B"},
		{"disk.write.bytes", "B"}, {"network.incoming.bytes", "B"}, {"filesystem.used", "%"}, {"load.1", ""},
	}
	for i := range n {
		nm := names[i%len(names)]
		kind := meter.Cumulative
		if nm.unit == "%" || nm.unit == "" || nm.name == "memory.used" {
			kind = meter.Gauge
		}
		env.Measurements = append(env.Measurements, meter.Measurement{
			Name: nm.name, Kind: kind, Unit: nm.unit, Value: float64(i) * 1234.5,
			Time: at.Add(time.Duration(i) * time.Millisecond), Host: env.Host,
			ResourceID: fmt.Sprintf("dev%d", i/len(names)),
			Labels:     []meter.Label{{Key: "driver", Value: "host"}, {Key: "device", Value: fmt.Sprintf("dev%d", i/len(names))}},
		})
	}
	return env
}

// BenchmarkSendReceive: batches of 1,000 host measurements over tcp
// loopback, Sender -> Receiver -> Ack, with 1 and 4 envelopes in flight.
func BenchmarkSendReceive(b *testing.B) {
	for _, inflight := range []int{1, 4} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			r, err := nanomsg.Listen("tcp://127.0.0.1:0", nanomsg.WithConcurrency(inflight), nanomsg.WithLogger(quiet))
			require.NoError(b, err)
			defer r.Close()
			s, err := nanomsg.Dial([]string{r.Addr()}, nanomsg.WithConcurrency(inflight), nanomsg.WithLogger(quiet))
			require.NoError(b, err)
			defer s.Close()

			ctx, cancel := context.WithCancel(context.Background())
			var serving sync.WaitGroup
			for range inflight {
				serving.Go(func() {
					for {
						d, err := r.Receive(ctx)
						if err != nil {
							return
						}
						_ = d.Ack(transport.Ack{Status: transport.StatusOK})
					}
				})
			}
			defer func() { cancel(); serving.Wait() }()

			envs := make([]*transport.Envelope, inflight)
			for i := range envs {
				envs[i] = hostBatch(batchSize)
			}
			frame, _ := transport.AppendEnvelope(nil, envs[0])
			require.NoError(b, s.Send(ctx, envs[0])) // warm up
			var next atomic.Int64
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var sending sync.WaitGroup
			for g := range inflight {
				sending.Go(func() {
					env := envs[g]
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						env.Seq = uint64(i)
						if err := s.Send(ctx, env); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			sending.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N*batchSize)/time.Since(start).Seconds(), "measurements/s")
		})
	}
}

// BenchmarkRawMangosReqRep is the baseline: frames of the same size over
// raw mangos REQ/REP contexts on tcp loopback, answered with a fixed small
// reply, no encoding or decoding.
func BenchmarkRawMangosReqRep(b *testing.B) {
	frame, err := transport.AppendEnvelope(nil, hostBatch(batchSize))
	require.NoError(b, err)
	reply := transport.AppendAck(nil, transport.Ack{Seq: 1, Status: transport.StatusOK})
	for _, inflight := range []int{1, 4} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			rs, err := rep.NewSocket()
			require.NoError(b, err)
			defer rs.Close()
			require.NoError(b, rs.SetOption(mangos.OptionMaxRecvSize, 8<<20))
			l, err := rs.NewListener("tcp://127.0.0.1:0", nil)
			require.NoError(b, err)
			require.NoError(b, l.Listen())
			qs, err := req.NewSocket()
			require.NoError(b, err)
			defer qs.Close()
			require.NoError(b, qs.Dial(l.Address()))

			var serving sync.WaitGroup
			for range inflight {
				c, err := rs.OpenContext()
				require.NoError(b, err)
				serving.Go(func() {
					for {
						m, err := c.RecvMsg()
						if err != nil {
							return
						}
						m.Free()
						m = mangos.NewMessage(len(reply))
						m.Body = append(m.Body, reply...)
						if err := c.SendMsg(m); err != nil {
							m.Free()
							return
						}
					}
				})
			}
			defer func() { _ = rs.Close(); serving.Wait() }()

			ctxs := make([]mangos.Context, inflight)
			for i := range ctxs {
				ctxs[i], err = qs.OpenContext()
				require.NoError(b, err)
			}
			var next atomic.Int64
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var sending sync.WaitGroup
			for g := range inflight {
				sending.Go(func() {
					c := ctxs[g]
					for next.Add(1) <= int64(b.N) {
						m := mangos.NewMessage(len(frame))
						m.Body = append(m.Body, frame...)
						if err := c.SendMsg(m); err != nil {
							b.Error(err)
							return
						}
						r, err := c.RecvMsg()
						if err != nil {
							b.Error(err)
							return
						}
						r.Free()
					}
				})
			}
			sending.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N*batchSize)/time.Since(start).Seconds(), "measurements/s")
		})
	}
}

// TestAllocsPerMeasurement: a round trip of 1,000 measurements allocates
// (nearly) no more than one of 10: nothing per measurement on either side.
func TestAllocsPerMeasurement(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures allocations (meaningless under -race)")
	}
	s, r := pair(t, "tcp://127.0.0.1:0", nanomsg.WithConcurrency(1))
	serve(t, r)
	ctx := context.Background()
	allocs := func(n int) float64 {
		env := hostBatch(n)
		for range 20 { // warm the decoder, the pools and the serving goroutine
			require.NoError(t, s.Send(ctx, env))
		}
		return testing.AllocsPerRun(50, func() {
			env.Seq++
			if err := s.Send(ctx, env); err != nil {
				t.Fatal(err)
			}
		})
	}
	small, large := allocs(10), allocs(batchSize)
	t.Logf("allocations per round trip: %.1f with 10 measurements, %.1f with %d", small, large, batchSize)
	require.Less(t, large-small, 10.0, "allocations grow with the number of measurements")
}
