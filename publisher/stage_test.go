package publisher_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/stage"
	_ "github.com/meterkit/meter/stage/selectstage"
	_ "github.com/meterkit/meter/stage/unit"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
)

// memorySpecs keeps the memory meters but memory.free, in MiB.
func memorySpecs(t *testing.T) []stage.Spec {
	var specs []stage.Spec
	require.NoError(t, json.Unmarshal([]byte(`[
		{"type": "select", "meters": ["memory.*", "!memory.free"]},
		{"type": "unit", "meters": ["memory.*"], "from": "B", "to": "MiB"}
	]`), &specs))
	return specs
}

func bytesGauge(name string, v float64) meter.Measurement {
	m := gauge(name, v)
	m.Unit = "B"
	return m
}

// transportPair makes a sender and a receiver: an in-process pipe, or
// nanomsg REQ/REP over loopback TCP.
func transportPair(t *testing.T, tcp bool) (transport.Sender, transport.Receiver) {
	if !tcp {
		return transport.Pipe()
	}
	r, err := nanomsg.Listen("tcp://127.0.0.1:0", nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	s, err := nanomsg.Dial([]string{r.Addr()}, nanomsg.WithLogger(quiet),
		nanomsg.WithReconnect(10*time.Millisecond, 100*time.Millisecond))
	require.NoError(t, err)
	return s, r
}

// stagedPublisher runs a publisher with opts on the receiving end of a
// fresh transport pair; stop stops it and closes the sender.
func stagedPublisher(t *testing.T, tcp bool, opts ...publisher.Option) (transport.Sender, *publisher.Publisher, func()) {
	t.Helper()
	s, r := transportPair(t, tcp)
	p, err := publisher.New(r, append([]publisher.Option{publisher.WithLogger(quiet)}, opts...)...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return s, p, func() {
		if tcp {
			time.Sleep(50 * time.Millisecond) // let handshakes finish (a mangos race at Close)
		}
		require.NoError(t, s.Close())
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, p.Close(context.Background()))
	}
}

// The publisher's stages run after validation and de-duplication: what
// reaches the sinks (through the spool or not) is their output; a batch
// they reduce to nothing is acknowledged OK, counted, written nowhere, and a
// resend of it is a duplicate, after a restart too when spooling.
func TestWithStagesShapesWhatIsWritten(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tcp, spool bool
	}{
		{"pipe", false, false}, {"pipe/spool", false, true}, {"tcp", true, false}, {"tcp/spool", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			opts := func(rec sink.Sink) []publisher.Option {
				o := []publisher.Option{publisher.WithSink("rec", rec), publisher.WithStages(memorySpecs(t))}
				if tc.spool {
					o = append(o, publisher.WithSpool(dir, publisher.SpoolSync(publisher.SyncNever)))
				}
				return o
			}
			var rec sink.Recorder
			s, p, stop := stagedPublisher(t, tc.tcp, opts(&rec)...)
			kept := envelope(1, bytesGauge("memory.used", 3<<20), bytesGauge("memory.free", 1<<20), gauge("cpu.util", 5))
			require.NoError(t, s.Send(ctx, kept))
			filtered := envelope(2, gauge("cpu.util", 6), gauge("load.1", 0.5))
			require.NoError(t, s.Send(ctx, filtered), "a batch the stages reduce to nothing is acknowledged OK")
			require.NoError(t, s.Send(ctx, filtered), "and so is its resend")
			stop()

			ms := rec.Measurements()
			require.Len(t, ms, 1, "only the stages' output reaches the sink")
			require.Equal(t, "memory.used", ms[0].Name)
			require.Equal(t, "MiB", ms[0].Unit)
			require.Equal(t, 3.0, ms[0].Value)
			require.Equal(t, 1, rec.Batches(), "the filtered batch is written nowhere")
			st := p.Stats()
			require.Equal(t, uint64(2), st.Acked)
			require.Equal(t, uint64(1), st.Duplicates, "the filtered batch's resend is a duplicate")
			require.Equal(t, uint64(5), st.Staged)
			require.Equal(t, uint64(1), st.StagedOut)
			require.Equal(t, uint64(4), st.Filtered)
			require.Equal(t, uint64(1), st.FilteredEnvelopes)
			require.Zero(t, st.StageErrors)
			require.Zero(t, st.RejectedEnvelopes)
			if tc.spool {
				require.Equal(t, uint64(1), st.Spooled, "what is spooled is the stages' output")
				require.Equal(t, uint64(1), st.Written)
			} else {
				require.Equal(t, uint64(1), st.Written)
			}
			if !tc.spool {
				return
			}
			// The marks were committed with the spool: a restarted
			// publisher still knows both batches.
			var again sink.Recorder
			s, p, stop = stagedPublisher(t, tc.tcp, opts(&again)...)
			require.NoError(t, s.Send(ctx, filtered))
			require.NoError(t, s.Send(ctx, kept))
			stop()
			require.Equal(t, uint64(2), p.Stats().Duplicates)
			require.Zero(t, again.Len())
		})
	}
}

type brokenStage struct{ closed atomic.Int32 }

func (b *brokenStage) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	return append(out, in[:1]...), errors.New("broken")
}

func (b *brokenStage) Close() error { b.closed.Add(1); return nil }

// A broken stage loses nothing: the batch goes on unstaged, counted. The
// publisher owns its stages and closes them once.
func TestBrokenStagePassesTheBatchOn(t *testing.T) {
	for _, spool := range []bool{false, true} {
		var rec sink.Recorder
		b := &brokenStage{}
		opts := []publisher.Option{publisher.WithSink("rec", &rec), publisher.WithStage(b)}
		if spool {
			opts = append(opts, publisher.WithSpool(t.TempDir(), publisher.SpoolSync(publisher.SyncNever)))
		}
		s, p, stop := run(t, opts...)
		require.NoError(t, s.Send(context.Background(), envelope(1, gauge("a", 1), gauge("b", 2))))
		stop()
		require.Equal(t, 2, rec.Len(), "spool %t: the batch went on unstaged", spool)
		st := p.Stats()
		require.Equal(t, uint64(1), st.StageErrors)
		require.Zero(t, st.Staged, "nothing counted as staged")
		require.Equal(t, uint64(1), st.Acked)
		require.Equal(t, int32(1), b.closed.Load(), "closed once, by the first Close")
	}

	r := func() transport.Receiver { _, r := transport.Pipe(); return r }
	_, err := publisher.New(r(), publisher.WithSink("d", sink.Discard), publisher.WithStage(nil))
	require.ErrorContains(t, err, "WithStage: stage 0 is nil")
	_, err = publisher.New(r(), publisher.WithSink("d", sink.Discard), publisher.WithStages([]stage.Spec{{Type: "no-such-stage"}}))
	require.ErrorContains(t, err, "no-such-stage")
}

// overlapStage notes whether Process was ever entered while running.
type overlapStage struct {
	active  atomic.Int32
	overlap atomic.Bool
	calls   atomic.Int32
}

func (o *overlapStage) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	if o.active.Add(1) > 1 {
		o.overlap.Store(true)
	}
	defer o.active.Add(-1)
	o.calls.Add(1)
	time.Sleep(200 * time.Microsecond)
	return append(out, in...), nil
}

// Workers are concurrent, the stages are not.
func TestStagesAreNeverCalledConcurrently(t *testing.T) {
	o := &overlapStage{}
	var rec sink.Recorder
	s, _, stop := run(t, publisher.WithSink("rec", &rec), publisher.WithStage(o), publisher.WithWorkers(8))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				env := envelope(uint64(g*10+i+1), gauge("a", float64(i)))
				require.NoError(t, s.Send(context.Background(), env))
			}
		})
	}
	wg.Wait()
	stop()
	require.Equal(t, int32(80), o.calls.Load())
	require.Equal(t, 80, rec.Len())
	require.False(t, o.overlap.Load(), "Process was called concurrently")
}
