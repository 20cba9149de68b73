package riemanntest

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// The option convention: the zero value of an option means the default,
// and an invalid one is an error from Listen that names the option.
func TestOptionConvention(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []Option
		check func(t *testing.T, s *Server)
		err   string // the whole error text; "" for success
	}{
		{name: "no options", check: func(t *testing.T, s *Server) {
			host, port, err := net.SplitHostPort(s.Addr())
			require.NoError(t, err)
			require.Equal(t, "127.0.0.1", host)
			require.NotEqual(t, "0", port)
			require.Empty(t, s.UDPAddr())
		}},
		{name: "empty address", opts: []Option{WithAddr(""), WithUDP()}, check: func(t *testing.T, s *Server) {
			host, _, err := net.SplitHostPort(s.Addr())
			require.NoError(t, err)
			require.Equal(t, "127.0.0.1", host)
			require.Equal(t, s.Port(), s.UDPAddr()[len("127.0.0.1:"):])
		}},
		{name: "nil tls", opts: []Option{WithTLS(nil)}, err: "riemanntest: WithTLS: nil *tls.Config"},
		{name: "tls", opts: []Option{WithTLS(&tls.Config{})}, check: func(t *testing.T, s *Server) {
			require.NotNil(t, s.cfg.tls)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Listen(tc.opts...)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				require.Nil(t, s)
				return
			}
			require.NoError(t, err)
			defer s.Close()
			tc.check(t, s)
		})
	}
}
