package nanomsg_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
)

// The Sender prefers frames just under the 64 KiB mangos pools, or its
// limit when that is smaller; the preference is never above the limit.
func TestPreferredFrameSize(t *testing.T) {
	// No peer: only what the Senders report is checked.
	s, err := nanomsg.Dial([]string{"tcp://127.0.0.1:1"}, nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	defer s.Close()
	small, err := nanomsg.Dial([]string{"tcp://127.0.0.1:1"}, nanomsg.WithLogger(quiet), nanomsg.WithMaxFrameSize(4096))
	require.NoError(t, err)
	defer small.Close()

	var fp transport.FramePreferrer = s
	n := fp.PreferredFrameSize()
	require.Less(t, n, 64<<10, "under the largest pooled message")
	require.Greater(t, n, 63<<10)
	require.Less(t, n, s.MaxFrameSize())
	require.Equal(t, 4096, small.PreferredFrameSize(), "the limit when it is smaller")
}
