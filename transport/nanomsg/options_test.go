package nanomsg_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport/nanomsg"
)

// A negative count or duration is an error from Dial or Listen naming the
// option; zero is the default.
func TestOptionConvention(t *testing.T) {
	for name, o := range map[string]nanomsg.Option{
		"WithMaxFrameSize": nanomsg.WithMaxFrameSize(-1),
		"WithConcurrency":  nanomsg.WithConcurrency(-4),
	} {
		_, err := nanomsg.Listen("tcp://127.0.0.1:0", o)
		require.ErrorContains(t, err, "nanomsg: "+name+": negative ", name)
		_, err = nanomsg.Dial([]string{"tcp://127.0.0.1:1"}, o)
		require.ErrorContains(t, err, "nanomsg: "+name+": negative ", name)
	}
	for name, o := range map[string]nanomsg.DialOption{
		"WithResendInterval": nanomsg.WithResendInterval(-time.Second),
		"WithReconnect min":  nanomsg.WithReconnect(-time.Second, 0),
		"WithReconnect max":  nanomsg.WithReconnect(0, -time.Second),
	} {
		_, err := nanomsg.Dial([]string{"tcp://127.0.0.1:1"}, o)
		require.ErrorContains(t, err, "nanomsg: "+name+": negative ", name)
	}

	r, err := nanomsg.Listen("tcp://127.0.0.1:0", nanomsg.WithMaxFrameSize(0), nanomsg.WithConcurrency(0), nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	s, err := nanomsg.Dial([]string{r.Addr()}, nanomsg.WithMaxFrameSize(0), nanomsg.WithConcurrency(0),
		nanomsg.WithResendInterval(0), nanomsg.WithReconnect(0, 0), nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	require.Equal(t, nanomsg.DefaultMaxFrameSize, s.MaxFrameSize(), "zero is the default")
	closeAfter(t, r, s)
}
