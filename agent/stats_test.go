package agent_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/agent"
)

// The "agent stats" line is read by scripts: these keys keep their names.
func TestStatsLogKeys(t *testing.T) {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("agent stats", slog.Any("", agent.Stats{
		Collections: 1, Added: 2, AckedMeasurements: 3, Queued: 4, Resent: 5, Invalid: 6,
		RejectedMeasurements: 7, DroppedMeasurements: 8, Panics: 9, CollectErrors: 10,
	}))
	for _, kv := range []string{` msg="agent stats" `, " collections=1 ", " added=2 ", " acked=3 ", " queued_batches=4 ",
		" resent=5 ", " invalid=6 ", " rejected=7 ", " dropped=8 ", " panics=9 ", " collect_errors=10 "} {
		require.Contains(t, b.String(), kv)
	}
}
