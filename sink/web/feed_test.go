package web_test

import (
	"context"
	"encoding/xml"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
)

// A host that went stale and came back is two entries, each with its level
// as category, so that a follower can pick the stale ones.
func TestFeedStaleAndFresh(t *testing.T) {
	s, srv := newServed(t)
	ctx := context.Background()
	require.NoError(t, s.Write(ctx, []meter.Measurement{
		stateChange("web1", "cpu.util", meter.StateOK, meter.StateStale, t0),
		stateChange("web1", "cpu.util", meter.StateStale, meter.StateOK, t0.Add(time.Minute)),
	}))
	code, body, _ := get(t, srv.URL+"/feed.atom")
	require.Equal(t, http.StatusOK, code)
	var f atomFeed
	require.NoError(t, xml.Unmarshal([]byte(body), &f), body)
	require.Len(t, f.Entries, 2)
	require.Equal(t, "web1 cpu.util: stale → ok", f.Entries[0].Title)
	require.Equal(t, "web1 cpu.util: ok → stale", f.Entries[1].Title)
	require.Contains(t, body, `<category term="stale"></category>`)
	require.Contains(t, f.Entries[1].Content.Body, "changed from ok to stale at "+t0.Format(time.RFC3339Nano))
	require.NotEqual(t, f.Entries[0].ID, f.Entries[1].ID)
}
