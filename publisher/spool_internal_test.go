package publisher

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
)

func spoolThree(t *testing.T, dir string) *spool {
	dd := newDedup(16, time.Minute)
	s, err := openSpool(dir, spoolConfig{maxBytes: 1 << 20}, []string{"store"}, dd)
	require.NoError(t, err)
	for seq := uint64(1); seq <= 3; seq++ {
		env := &transport.Envelope{Version: transport.Version, Agent: "a", Seq: seq, SentAt: time.Now()}
		batch := []meter.Measurement{{Name: "m", Kind: meter.Gauge, Value: float64(seq), Time: time.Now()}}
		_, err := s.append(env, batch, dd, sourceKey("", "a"))
		require.NoError(t, err)
	}
	return s
}

// crash closes the files as kill -9 would leave them: no compaction.
func crash(s *spool) {
	_ = s.marks.Close()
	_ = s.db.Close()
}

func TestDeliveredMarkSurvivesCrashBeforeCompaction(t *testing.T) {
	dir := t.TempDir()
	s := spoolThree(t, dir)
	l := s.lanes["store"]
	first := l.entries[0].id
	require.NoError(t, s.remove(l, first)) // two batches left: no compaction yet
	require.Len(t, l.delivered, 1, "marked, not yet deleted from the main file")
	crash(s)

	s, err := openSpool(dir, spoolConfig{maxBytes: 1 << 20}, []string{"store"}, newDedup(16, time.Minute))
	require.NoError(t, err)
	defer s.close()
	b, m := s.pending("store")
	require.Equal(t, 2, b, "the batch marked delivered before the crash is not delivered again")
	require.Equal(t, 2, m)
	require.Empty(t, s.lanes["store"].delivered, "compacted at open")
}

func TestDamagedMarksFileMeansRedeliveryNotLoss(t *testing.T) {
	dir := t.TempDir()
	s := spoolThree(t, dir)
	l := s.lanes["store"]
	require.NoError(t, s.remove(l, l.entries[0].id))
	crash(s)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "publisher.delivered"), []byte("garbage after a power cut"), 0o600))

	s, err := openSpool(dir, spoolConfig{maxBytes: 1 << 20}, []string{"store"}, newDedup(16, time.Minute))
	require.NoError(t, err)
	defer s.close()
	b, _ := s.pending("store")
	require.Equal(t, 3, b, "the mark is gone, so the batch is delivered again: a duplicate, never a loss")
}

func TestCompactionWhenLaneEmpties(t *testing.T) {
	dir := t.TempDir()
	s := spoolThree(t, dir)
	l := s.lanes["store"]
	for len(l.entries) > 0 {
		require.NoError(t, s.remove(l, l.entries[0].id))
	}
	require.Empty(t, l.delivered)
	crash(s)
	s, err := openSpool(dir, spoolConfig{maxBytes: 1 << 20}, []string{"store"}, newDedup(16, time.Minute))
	require.NoError(t, err)
	defer s.close()
	b, _ := s.pending("store")
	require.Zero(t, b)
}
