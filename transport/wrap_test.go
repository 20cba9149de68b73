package transport_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport"
)

// selfWrapper wraps itself: As must still return.
type selfWrapper struct{ transport.Receiver }

func (s *selfWrapper) Unwrap() transport.Receiver { return s }

// nilWrapper wraps nothing (yet).
type nilWrapper struct{ transport.Receiver }

func (nilWrapper) Unwrap() transport.Receiver { return nil }

type stats interface{ Stats() int }

type statsReceiver struct{ transport.Receiver }

func (statsReceiver) Stats() int { return 7 }

type recvWrapper struct{ transport.Receiver }

func (w recvWrapper) Unwrap() transport.Receiver { return w.Receiver }

func TestAs(t *testing.T) {
	_, r := transport.Pipe()
	deep := recvWrapper{recvWrapper{statsReceiver{r}}}
	st, ok := transport.As[stats](deep)
	require.True(t, ok)
	require.Equal(t, 7, st.Stats())
	require.Equal(t, recvWrapper{statsReceiver{r}}, transport.UnwrapReceiver(deep))
	require.Nil(t, transport.UnwrapReceiver(r))

	_, ok = transport.As[stats](recvWrapper{r})
	require.False(t, ok)
	_, ok = transport.As[stats](nilWrapper{r})
	require.False(t, ok)
	_, ok = transport.As[stats](&selfWrapper{r})
	require.False(t, ok, "a wrapper that wraps itself ends the search")
	_, ok = transport.As[stats](nil)
	require.False(t, ok)
}
