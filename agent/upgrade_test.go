package agent_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
)

// received keeps what a receiver accepted, copied before the ack (after
// which a transport reuses the memory).
type received struct {
	mu   sync.Mutex
	seqs []uint64
	ms   []meter.Measurement
}

func (c *received) run(t *testing.T, r transport.Receiver) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d, err := r.Receive(ctx)
			if err != nil {
				return
			}
			b, err := json.Marshal(d.Envelope.Measurements)
			require.NoError(t, err)
			var ms []meter.Measurement
			require.NoError(t, json.Unmarshal(b, &ms))
			c.mu.Lock()
			c.seqs = append(c.seqs, d.Envelope.Seq)
			c.ms = append(c.ms, ms...)
			c.mu.Unlock()
			if err := d.Ack(transport.Ack{Status: transport.StatusOK}); err != nil {
				t.Errorf("ack: %v", err)
			}
		}
	}()
	return func() { cancel(); <-done }
}

func copyFixture(t *testing.T, dir, name string) {
	b, err := os.ReadFile(filepath.Join("testdata", "spoolv1", name))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
}

func freeTCP(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return "tcp://" + l.Addr().String()
}

// The spool file of the release before the shared spool (testdata/spoolv1,
// written by commit 38b0829: four unacknowledged batches and the last
// sequence number) opens, and every batch is delivered exactly, in order,
// over transport.Pipe (decoded, then sent) and over nanomsg (the stored
// frames sent as they are); numbering goes on after the spooled batches.
func TestSpoolOfEarlierReleaseIsDelivered(t *testing.T) {
	var want []meter.Measurement
	b, err := os.ReadFile(filepath.Join("testdata", "spoolv1", "want.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &want))
	require.Len(t, want, 10)

	for _, tc := range []struct {
		name string
		raw  bool
		open func(t *testing.T) (transport.Sender, transport.Receiver)
	}{
		{"pipe", false, func(*testing.T) (transport.Sender, transport.Receiver) { return transport.Pipe() }},
		{"nanomsg", true, func(t *testing.T) (transport.Sender, transport.Receiver) {
			addr := freeTCP(t)
			r, err := nanomsg.Listen(addr, nanomsg.WithLogger(quiet))
			require.NoError(t, err)
			s, err := nanomsg.Dial([]string{addr}, nanomsg.WithLogger(quiet))
			require.NoError(t, err)
			return s, r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyFixture(t, dir, "agent.spool")
			s, r := tc.open(t)
			_, isRaw := transport.AsRawSender(s)
			require.Equal(t, tc.raw, isRaw)
			var got received
			stopRecv := got.run(t, r)
			opts := []agent.Option{agent.WithLogger(quiet), agent.WithID("fixture-agent"), agent.WithTenant("t1"),
				agent.WithHost("fixture-host"), agent.WithSpool(dir), agent.WithBatch(100, time.Hour)}
			a, err := agent.New(s, opts...)
			require.NoError(t, err)
			require.Equal(t, 4, a.Stats().Queued, "the four batches of the earlier release")
			stop := start(t, a)
			require.Eventually(t, func() bool { return a.Stats().AckedMeasurements == 10 }, 10*time.Second, time.Millisecond)
			require.NoError(t, stop())

			// A second run numbers on from the spool's last sequence number.
			a, err = agent.New(s, opts...)
			require.NoError(t, err)
			require.Zero(t, a.Stats().Queued)
			stop = start(t, a)
			require.NoError(t, a.Add(meter.Measurement{Name: "fresh", Kind: meter.Gauge, Value: 1}))
			require.NoError(t, stop())
			require.NoError(t, s.Close())
			stopRecv()
			require.NoError(t, r.Close())

			got.mu.Lock()
			defer got.mu.Unlock()
			require.Equal(t, want, got.ms[:10], "every spooled measurement, exactly")
			require.Len(t, got.ms, 11)
			require.Equal(t, "fresh", got.ms[10].Name)
			require.Len(t, got.seqs, 5)
			for i := 1; i < len(got.seqs); i++ {
				require.Greater(t, got.seqs[i], got.seqs[i-1], "in order, numbering goes on: %v", got.seqs)
			}
		})
	}
}
