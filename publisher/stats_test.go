package publisher_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/publisher"
)

// The "publisher stats" line is read by scripts and the load harness: these
// keys keep their names.
func TestStatsLogKeys(t *testing.T) {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("publisher stats", slog.Any("", publisher.Stats{
		Envelopes: 1, Received: 2, Written: 3, Invalid: 4, Duplicates: 5, Spooled: 6, Pending: 7,
		SpoolDropped: 8, RetryEnvelopes: 9, RejectedEnvelopes: 10, SinkErrors: 11, Reconciled: 12, ResentInDoubt: 13,
	}))
	for _, kv := range []string{` msg="publisher stats" `, " envelopes=1 ", " received=2 ", " written=3 ", " invalid=4 ",
		" duplicates=5 ", " spooled=6 ", " pending=7 ", " spool_dropped=8 ", " retry=9 ", " rejected=10 ",
		" sink_errors=11 ", " reconciled=12 ", " resent_in_doubt=13"} {
		require.Contains(t, b.String(), kv)
	}
}
