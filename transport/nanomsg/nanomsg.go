package nanomsg

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"go.nanomsg.org/mangos/v3"
	// Only the transports we support, not transport/all (which pulls in
	// websocket dependencies).
	_ "go.nanomsg.org/mangos/v3/transport/inproc"
	_ "go.nanomsg.org/mangos/v3/transport/ipc"
	_ "go.nanomsg.org/mangos/v3/transport/tcp"
	_ "go.nanomsg.org/mangos/v3/transport/tlstcp"
)

// checkAddr reports an address whose scheme this package does not support,
// and a tls+tcp address without a TLS config.
func checkAddr(addr string, c *config) error {
	scheme, _, ok := strings.Cut(addr, "://")
	if !ok {
		return errors.New("no scheme (want tcp://, tls+tcp://, ipc:// or inproc://)")
	}
	switch scheme {
	case "tcp", "ipc", "inproc":
		return nil
	case "tls+tcp":
		if c.tls == nil {
			return errors.New("tls+tcp needs WithTLS")
		}
		return nil
	}
	return fmt.Errorf("unsupported scheme %q (want tcp://, tls+tcp://, ipc:// or inproc://)", scheme)
}

// endpointOptions are the mangos options of one dialer or listener.
func endpointOptions(addr string, c *config, dial bool) map[string]any {
	o := map[string]any{}
	if dial {
		o[mangos.OptionDialAsynch] = true
		o[mangos.OptionReconnectTime] = c.reconnMin
		o[mangos.OptionMaxReconnectTime] = c.reconnMax
	}
	if strings.HasPrefix(addr, "tls+tcp://") {
		o[mangos.OptionTLSConfig] = c.tls
	}
	return o
}

// wireLimit is the largest frame a connection accepts before mangos drops
// it: twice the frame limit, so that frames a little too large still get a
// StatusRejected answer explaining why.
func wireLimit(maxFrame int) int {
	if maxFrame > (1<<31-1)/2 {
		return 1<<31 - 1
	}
	return 2 * maxFrame
}

// peerOf describes the remote end of p for logs.
func peerOf(p mangos.Pipe) string {
	if p == nil {
		return ""
	}
	if v, err := p.GetOption(mangos.OptionRemoteAddr); err == nil {
		if a, ok := v.(net.Addr); ok && a != nil && a.String() != "" {
			return a.Network() + "://" + a.String()
		}
	}
	return p.Address()
}
