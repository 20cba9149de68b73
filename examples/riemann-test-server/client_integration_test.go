//go:build integration

package main

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The Riemann C client (Debian's riemann-c-client) sends to the server and
// reads its events back with a query, as a user trying it on a laptop would.
func TestRiemannClientSendsAndQueries(t *testing.T) {
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	stdout, _, stop := start(t, "-listen", addr, "-every", "50ms")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "riemann-client", "send", "-h", "laptop", "-S", "api.requests", "-s", "ok",
		"-d", "42.5", "-t", "try", "-a", "k=v", "-L", "60", host, port).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Eventually(t, func() bool {
		return strings.Contains(stdout.String(), "laptop api.requests 42.5 state=ok ttl=60 tags=try k=v")
	},
		10*time.Second, 10*time.Millisecond, "%s", stdout)
	out, err = exec.CommandContext(ctx, "riemann-client", "query", `service = "api.requests"`, "-j", host, port).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), `"host":"laptop"`)
	require.Contains(t, string(out), `"metric_d":42.5`)
	require.Equal(t, 0, stop())
}
