package publisher_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/transport"
)

// The spool files of the release before the shared spool (testdata/spoolv1,
// written by commit 38b0829 and left as kill -9 leaves them) open and are
// delivered exactly: lane "keep" all five batches, lane "half" the three it
// had not delivered (its marks file says it took the first two), and the
// de-duplication window still knows the five sequence numbers.
func TestSpoolOfEarlierReleaseIsDelivered(t *testing.T) {
	var want struct {
		Batches       [][]meter.Measurement `json:"batches"`
		HalfDelivered []meter.Measurement   `json:"half_delivered"`
	}
	b, err := os.ReadFile(filepath.Join("testdata", "spoolv1", "want.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &want))
	require.Len(t, want.Batches, 5)
	var all, rest []meter.Measurement
	for i, b := range want.Batches {
		all = append(all, b...)
		if i >= 2 {
			rest = append(rest, b...)
		}
	}
	require.Equal(t, all[:len(all)-len(rest)], want.HalfDelivered, "the fixture's lane half took batches 1 and 2")

	dir := t.TempDir()
	for _, f := range []string{"publisher.spool", "publisher.delivered"} {
		b, err := os.ReadFile(filepath.Join("testdata", "spoolv1", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o600))
	}
	var keep, half sink.Recorder
	s, p, stop := run(t, publisher.WithSink("keep", &keep), publisher.WithSink("half", &half), publisher.WithSpool(dir))
	require.Eventually(t, func() bool { return p.Stats().Pending == 0 }, 10*time.Second, time.Millisecond)
	require.Equal(t, all, keep.Measurements(), "lane keep: every batch, exactly, in order")
	require.Equal(t, rest, half.Measurements(), "lane half: the batches it had not delivered")
	require.Equal(t, 5, keep.Batches())
	require.Equal(t, 3, half.Batches())

	// The de-duplication window came through: a resend of seq 103 is a duplicate.
	env := &transport.Envelope{Tenant: "t1", Agent: "fixture-agent", Seq: 103, SentAt: time.Now(), Host: "fixture-host",
		Measurements: want.Batches[2]}
	require.NoError(t, s.Send(context.Background(), env))
	require.Equal(t, uint64(1), p.Stats().Duplicates)
	stop()
	require.Equal(t, 5, keep.Batches(), "nothing written twice")
	require.Equal(t, 3, half.Batches())
}
