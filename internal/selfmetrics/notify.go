package selfmetrics

import (
	"net"
	"os"
)

// Notify sends state (such as "READY=1" or "STOPPING=1") to the service
// manager at $NOTIFY_SOCKET, as systemd's sd_notify does: a unixgram
// datagram, "@" at the start naming an abstract socket. Without
// $NOTIFY_SOCKET it does nothing and returns false.
func Notify(state string) (bool, error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, err
	}
	return true, nil
}
