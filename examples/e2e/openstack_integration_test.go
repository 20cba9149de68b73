//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// Helpers for the OpenStack servers: RabbitMQ from
// scripts/openstack/rabbitmq.sh, Debian's python3-oslo.messaging as the
// publisher of real notifications.

func scriptPath(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "scripts", rel)
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.mod above the test")
		dir = parent
	}
}

func needFile(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s is missing: apt-get install -y %s", path, pkg)
	}
}

func portIsFree(p int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

type rabbitNode struct {
	t    testing.TB
	dir  string
	port int
}

func (r *rabbitNode) url() string {
	return "amqp://guest:guest@127.0.0.1:" + strconv.Itoa(r.port) + "/"
}

func (r *rabbitNode) script(args ...string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, scriptPath(r.t, "openstack/rabbitmq.sh"), args...).CombinedOutput()
	require.NoError(r.t, err, "rabbitmq.sh %v: %s", args, out)
	return string(out)
}

func startRabbitNode(t testing.TB) *rabbitNode {
	t.Helper()
	needFile(t, "/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server")
	dir, err := os.MkdirTemp("/var/tmp", "mk-rabbit-")
	require.NoError(t, err)
	port := 0
	for range 200 {
		p := 20000 + rand.IntN(5000) // below the ephemeral range, with +10000 and +20000 free too
		if portIsFree(p) && portIsFree(p+10000) && portIsFree(p+20000) {
			port = p
			break
		}
	}
	require.NotZero(t, port, "no free port triple for RabbitMQ")
	r := &rabbitNode{t: t, dir: dir, port: port}
	begin := time.Now()
	r.script("start", dir, strconv.Itoa(port))
	t.Logf("RabbitMQ on 127.0.0.1:%d up in %v", port, time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		r.script("stop", dir)
		os.RemoveAll(dir)
	})
	return r
}

// channel opens a connection and a channel, closed at the end of the test.
func (r *rabbitNode) channel(t testing.TB) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(r.url())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	return ch
}

// queue reports queue's ready messages and consumers, or ok=false when it
// does not exist.
func (r *rabbitNode) queue(t testing.TB, name string) (messages, consumers int, ok bool) {
	t.Helper()
	conn, err := amqp.Dial(r.url())
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	if err != nil {
		return 0, 0, false
	}
	return q.Messages, q.Consumers, true
}

// publishRaw puts body on exchange with routing key notifications.info,
// confirmed by the broker.
func (r *rabbitNode) publishRaw(t testing.TB, exchange string, body []byte) {
	t.Helper()
	ch := r.channel(t)
	require.NoError(t, ch.Confirm(false))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, "notifications.info", true, false,
		amqp.Publishing{ContentType: "application/json", Body: body})
	require.NoError(t, err)
	ok, err := c.WaitContext(ctx)
	require.NoError(t, err)
	require.True(t, ok, "publish confirmed")
}

// osloNotifier publishes with oslo.messaging's Notifier, as Nova does: each
// line of stdin is {"exchange", "publisher_id", "event_type", "payload"}.
const osloNotifier = `
import json, sys
from oslo_config import cfg
import oslo_messaging
url = sys.argv[1]
transports = {}
for line in sys.stdin:
    n = json.loads(line)
    x = n["exchange"]
    if x not in transports:
        oslo_messaging.set_transport_defaults(control_exchange=x)
        transports[x] = oslo_messaging.get_notification_transport(cfg.ConfigOpts(), url=url)
    notifier = oslo_messaging.Notifier(transports[x], driver='messagingv2', topics=['notifications'], publisher_id=n["publisher_id"])
    notifier.info({}, n["event_type"], n["payload"])
for t in transports.values():
    t.cleanup()
`

type novaNote struct {
	Exchange    string         `json:"exchange"`
	PublisherID string         `json:"publisher_id"`
	EventType   string         `json:"event_type"`
	Payload     map[string]any `json:"payload"`
}

func (r *rabbitNode) publishOslo(t testing.TB, notes ...novaNote) {
	t.Helper()
	needFile(t, "/usr/lib/python3/dist-packages/oslo_messaging/__init__.py", "python3-oslo.messaging")
	var in strings.Builder
	for _, n := range notes {
		b, err := json.Marshal(n)
		require.NoError(t, err)
		in.Write(b)
		in.WriteByte('\n')
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// oslo's scheme for RabbitMQ is rabbit:// (amqp:// would pick its AMQP 1.0 driver).
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-c", osloNotifier, "rabbit://guest:guest@127.0.0.1:"+strconv.Itoa(r.port)+"/")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "oslo.messaging notifier: %s", out)
}

// instanceExists is Nova's legacy compute.instance.exists notification for
// instance id, with the payload fields Nova documents.
func instanceExists(id string) novaNote {
	return novaNote{Exchange: "nova", PublisherID: "compute.compute-01", EventType: "compute.instance.exists",
		Payload: map[string]any{
			"tenant_id": "8a4c3d2e1f0b4a9c8d7e6f5a4b3c2d1e", "user_id": "1f2e3d4c5b6a4978a1b2c3d4e5f60718", "instance_id": id,
			"display_name": "web-" + id[len(id)-2:], "hostname": "web", "host": "compute-01", "node": "compute-01",
			"instance_type": "m1.small", "instance_type_id": 5, "instance_flavor_id": "2",
			"memory_mb": 2048, "vcpus": 1, "root_gb": 20, "ephemeral_gb": 0, "disk_gb": 20,
			"state": "active", "state_description": "", "availability_zone": "nova",
			"created_at": "2026-11-30 09:00:00+00:00", "launched_at": "2026-11-30T09:00:20.000000",
			"terminated_at": "", "deleted_at": "", "metadata": map[string]any{},
			"image_ref_url": "http://controller:9292/images/0e4b1c6a-2d3f-4a5b-9c8d-7e6f5a4b3c2d",
			"image_meta":    map[string]any{"base_image_ref": "0e4b1c6a-2d3f-4a5b-9c8d-7e6f5a4b3c2d", "container_format": "bare", "disk_format": "qcow2"},
		}}
}

// storedLine is a measurement as the publisher's console sink writes it.
type storedLine struct {
	Name       string            `json:"name"`
	ResourceID string            `json:"resource_id"`
	Labels     map[string]string `json:"labels"`
}

// stored reads the console sink's JSON lines: per resource id, the
// message ids seen and the number of measurements.
func stored(l *lines) (ids map[string]map[string]int) {
	ids = map[string]map[string]int{}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.all {
		var m storedLine
		if json.Unmarshal([]byte(s), &m) != nil || m.Labels["message_id"] == "" {
			continue
		}
		if ids[m.ResourceID] == nil {
			ids[m.ResourceID] = map[string]int{}
		}
		ids[m.ResourceID][m.Labels["message_id"]]++
	}
	return ids
}

func instanceIDs(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("c7a1e5b2-3f4d-4e6a-8b9c-0d1e2f3a4b%02d", i))
	}
	return out
}

// exec_ runs bin with args and returns its combined output.
func exec_(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// agentCmd is the agent binary with args, with the test hook
// METERKIT_AGENT_TEST_HOLD set to hold unless it is empty.
func agentCmd(t testing.TB, bin, hold string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	if hold != "" {
		cmd.Env = append(cmd.Env, "METERKIT_AGENT_TEST_HOLD="+hold)
	}
	return cmd
}

// startCmd starts cmd and collects its stderr; wait waits for the process
// to end once its stderr is read to the end. The process is killed at the
// end of the test if it still runs.
func startCmd(t testing.TB, cmd *exec.Cmd) (errOut *lines, wait func()) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	errOut = &lines{}
	done := make(chan struct{})
	go func() { defer close(done); errOut.read(stderr) }()
	var once sync.Once
	wait = func() { once.Do(func() { <-done; _ = cmd.Wait() }) }
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		wait()
	})
	return errOut, wait
}
