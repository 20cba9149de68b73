package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
)

// With the default 4 MiB limit, a collection of about five times the frame
// size nanomsg prefers (its pooled buffers) arrives whole and in order in
// batches cut to that size, not in one large frame; a measurement larger
// than the preference but within the limit is not dropped: it goes alone
// in its batch.
func TestBatchesCutToThePreferredFrameSize(t *testing.T) {
	r := listenTCP(t, "tcp://127.0.0.1:0")
	defer r.Close()
	var got frames
	stop := got.run(r)
	defer stop()
	s := dialTCP(t, r.Addr())
	prefer := s.PreferredFrameSize()
	require.Less(t, prefer, s.MaxFrameSize())
	a, err := agent.New(s, agent.WithHost("h"), agent.WithLogger(quiet), agent.WithBatch(100_000, 20*time.Millisecond))
	require.NoError(t, err)
	defer a.Close(context.Background())

	var coll []meter.Measurement
	for i := range 5 * prefer / 200 { // about 200 bytes each
		coll = append(coll, labelled("small", float64(i), 180))
	}
	bigAt := len(coll) / 2
	coll[bigAt] = labelled("big", float64(bigAt), meter.MaxLabels*meter.MaxLabelValueLen) // over the preference (64 KiB of labels), within the limit
	require.NoError(t, a.Add(coll...))
	cancel := start(t, a)
	require.Eventually(t, func() bool { return got.received() == len(coll) }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, cancel())

	got.mu.Lock()
	defer got.mu.Unlock()
	for i := range coll {
		require.Equal(t, float64(i), got.values[i], "in collection order")
	}
	over := 0
	for _, n := range got.sizes {
		if n > prefer {
			over++
		}
	}
	require.Equal(t, 1, over, "only the big measurement's batch is over the preferred size")
	require.GreaterOrEqual(t, len(got.seqs), 6, "five preferred frames' worth and the big one")
	st := a.Stats()
	require.Zero(t, st.Oversized)
	require.Zero(t, st.Split)
	require.Zero(t, st.Failed+st.Rejected+st.Dropped)
}
