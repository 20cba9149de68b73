//go:build integration

package notification

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/driver/drivertest"
	"github.com/meterkit/meter/transport"
)

// The servers: a RabbitMQ node from scripts/openstack/rabbitmq.sh, and
// Debian's python3-oslo.messaging as the publisher of real notifications.

func scripts(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "scripts", "openstack", name)
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.mod above the test")
		dir = parent
	}
}

func needBinary(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s is missing: apt-get install -y %s", path, pkg)
	}
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

type rabbit struct {
	t    testing.TB
	dir  string
	port int
}

func (r *rabbit) url() string { return "amqp://guest:guest@127.0.0.1:" + strconv.Itoa(r.port) + "/" }

func (r *rabbit) run(cmd ...string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, scripts(r.t, "rabbitmq.sh"), cmd...).CombinedOutput()
	require.NoError(r.t, err, "rabbitmq.sh %v: %s", cmd, out)
	return string(out)
}

func startRabbit(t testing.TB) *rabbit {
	t.Helper()
	needBinary(t, "/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server")
	dir, err := os.MkdirTemp("/var/tmp", "mk-rabbit-")
	require.NoError(t, err)
	port := 0
	for range 200 {
		p := 20000 + rand.IntN(5000) // below the ephemeral range, with +10000 and +20000 free too
		if portFree(p) && portFree(p+10000) && portFree(p+20000) {
			port = p
			break
		}
	}
	require.NotZero(t, port, "no free port triple for RabbitMQ")
	r := &rabbit{t: t, dir: dir, port: port}
	begin := time.Now()
	r.run("start", dir, strconv.Itoa(port))
	t.Logf("RabbitMQ on 127.0.0.1:%d up in %v", port, time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		r.run("stop", dir)
		os.RemoveAll(dir)
	})
	return r
}

// bound reports whether queue is bound to exchange, from the broker's list.
func (r *rabbit) bound(queue, exchange string) bool {
	out := r.run("ctl", r.dir, "list_bindings", "-q", "--no-table-headers", "source_name", "destination_name", "routing_key")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == exchange && f[1] == queue && f[2] == DefaultRoutingKey {
			return true
		}
	}
	return false
}

func (r *rabbit) waitBound(t *testing.T, queue string, exchanges ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, x := range exchanges {
		for !r.bound(queue, x) {
			require.True(t, time.Now().Before(deadline), "queue %s not bound to %s", queue, x)
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// messages is what queue holds ready (not delivered and unacknowledged).
func (r *rabbit) messages(t *testing.T, queue string) int {
	t.Helper()
	conn, err := amqp.Dial(r.url())
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err)
	return q.Messages
}

// declareExchanges declares topic exchanges as oslo.messaging does
// (durable=false, auto_delete=false).
func (r *rabbit) declareExchanges(t *testing.T, names ...string) {
	t.Helper()
	conn, err := amqp.Dial(r.url())
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	for _, x := range names {
		require.NoError(t, ch.ExchangeDeclare(x, amqp.ExchangeTopic, false, false, false, false, nil))
	}
}

// publishRaw puts a body on exchange with routing key notifications.info.
func (r *rabbit) publishRaw(ctx context.Context, exchange string, body []byte) error {
	conn, err := amqp.Dial(r.url())
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	c, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, DefaultRoutingKey, true, false,
		amqp.Publishing{ContentType: "application/json", Body: body})
	if err != nil {
		return err
	}
	if ok, err := c.WaitContext(ctx); err != nil || !ok {
		return fmt.Errorf("publish not confirmed: %v", err)
	}
	return nil
}

// osloPublisher publishes with oslo.messaging's Notifier, as Nova and Cinder
// do: each line of stdin is {"exchange", "event_type", "payload"}.
const osloPublisher = `
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
    t = transports[x]
    notifier = oslo_messaging.Notifier(t, driver='messagingv2', topics=['notifications'], publisher_id=n["publisher_id"])
    notifier.info({}, n["event_type"], n["payload"])
for t in transports.values():
    t.cleanup()
`

type osloNote struct {
	Exchange    string         `json:"exchange"`
	PublisherID string         `json:"publisher_id"`
	EventType   string         `json:"event_type"`
	Payload     map[string]any `json:"payload"`
}

func publishOslo(t *testing.T, r *rabbit, notes ...osloNote) {
	t.Helper()
	needBinary(t, "/usr/lib/python3/dist-packages/oslo_messaging/__init__.py", "python3-oslo.messaging")
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
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-c", osloPublisher, "rabbit://guest:guest@127.0.0.1:"+strconv.Itoa(r.port)+"/")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "oslo.messaging publisher: %s", out)
}

const (
	instanceID = "c7a1e5b2-3f4d-4e6a-8b9c-0d1e2f3a4b5c"
	volumeID   = "e2d4f6a8-1b3c-4d5e-8f7a-9b0c1d2e3f4a"
	projectID  = "8a4c3d2e1f0b4a9c8d7e6f5a4b3c2d1e"
	userID     = "1f2e3d4c5b6a4978a1b2c3d4e5f60718"
)

// instancePayload is what Nova's legacy notifications carry, written by
// hand with the fields Nova documents (nova/notifications/base.py
// info_from_instance).
func instancePayload(state string, memory, vcpus, root float64) map[string]any {
	return map[string]any{
		"tenant_id": projectID, "user_id": userID, "instance_id": instanceID,
		"display_name": "web-1", "hostname": "web-1", "host": "compute-01", "node": "compute-01",
		"instance_type": "m1.small", "instance_type_id": 5, "instance_flavor_id": "2",
		"memory_mb": memory, "vcpus": vcpus, "root_gb": root, "ephemeral_gb": 0, "disk_gb": root,
		"state": state, "state_description": "", "availability_zone": "nova",
		"image_ref_url": "http://controller:9292/images/0e4b1c6a-2d3f-4a5b-9c8d-7e6f5a4b3c2d",
		"image_meta":    map[string]any{"base_image_ref": "0e4b1c6a-2d3f-4a5b-9c8d-7e6f5a4b3c2d", "container_format": "bare", "disk_format": "qcow2"},
		"created_at":    "2026-11-30 09:00:00+00:00", "launched_at": "2026-11-30T09:00:20.000000",
		"terminated_at": "", "deleted_at": "", "metadata": map[string]any{},
	}
}

// recorder plays the agent: it records deliveries and acknowledges them
// after a simulated commit, or holds or fails the acks.
type recorder struct {
	mu     sync.Mutex
	ms     []meter.Measurement
	mode   string // "ack", "hold", "fail"
	held   []func(error)
	acks   sync.WaitGroup
	failed int
}

func (r *recorder) deliver(d driver.Delivery) {
	ms, ack := d.Measurements, d.Ack
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ms = append(r.ms, ms...)
	switch r.mode {
	case "hold":
		r.held = append(r.held, ack)
	case "fail":
		r.failed++
		r.acks.Go(func() { ack(fmt.Errorf("test: spool full: %w", driver.ErrNotDelivered)) })
	default:
		r.acks.Go(func() { time.Sleep(10 * time.Millisecond); ack(nil) })
	}
}

func (r *recorder) measurements() []meter.Measurement {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]meter.Measurement(nil), r.ms...)
}

func (r *recorder) waitFor(t *testing.T, n int) []meter.Measurement {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ms := r.measurements()
		if len(ms) >= n {
			return ms
		}
		require.True(t, time.Now().Before(deadline), "got %d measurements, want %d", len(ms), n)
		time.Sleep(20 * time.Millisecond)
	}
}

func run(t *testing.T, d *Driver, rec *recorder) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Push(ctx, rec.deliver) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(5 * time.Second):
				t.Error("Push did not return after its ctx ended")
			}
		})
	}
	t.Cleanup(stop) // a failed test still stops its driver before its broker
	return stop
}

func newDriver(t *testing.T, r *rabbit, queue string, exchanges ...string) *Driver {
	t.Helper()
	d, err := NewDriver(Config{URL: r.url(), Queue: queue, Exchanges: exchanges,
		RetryInterval: driver.Duration(200 * time.Millisecond)}, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	require.NoError(t, err)
	return d
}

func TestNotificationFromOsloMessaging(t *testing.T) {
	r := startRabbit(t)
	r.declareExchanges(t, "nova", "cinder")
	d := newDriver(t, r, DefaultQueue, "nova", "cinder", "glance")
	rec := &recorder{}
	stop := run(t, d, rec)
	// The driver's queue is bound before anything is published; glance
	// does not exist yet, and is bound once it does.
	r.waitBound(t, DefaultQueue, "nova", "cinder")
	require.False(t, r.bound(DefaultQueue, "glance"))
	r.declareExchanges(t, "glance")
	r.waitBound(t, DefaultQueue, "glance")

	// A garbage message first: it must not stop the ones behind it.
	require.NoError(t, r.publishRaw(context.Background(), "nova", []byte("not a notification {")))
	publishOslo(t, r,
		osloNote{"nova", "compute.compute-01", "compute.instance.create.start", instancePayload("building", 2048, 1, 20)}, // unmatched
		osloNote{"nova", "compute.compute-01", "compute.instance.create.end", instancePayload("active", 2048, 1, 20)},
		osloNote{"nova", "compute.compute-01", "compute.instance.exists", instancePayload("active", 4096, 2, 40)},
		osloNote{"nova", "compute.compute-01", "compute.instance.delete.end", instancePayload("deleted", 4096, 2, 40)},
		osloNote{"cinder", "volume.block-01", "volume.create.end", map[string]any{
			"tenant_id": projectID, "user_id": userID, "volume_id": volumeID, "size": 40,
			"display_name": "data-1", "volume_type": "lvm", "status": "available",
			"availability_zone": "nova", "host": "block-01@lvm#lvm", "created_at": "2026-11-30 09:10:00+00:00",
		}},
	)
	ms := rec.waitFor(t, 13)
	rec.acks.Wait()
	stop()
	require.Len(t, ms, 13)

	type key struct{ name, event string }
	got := map[key]meter.Measurement{}
	ids := map[string]bool{}
	for _, m := range ms {
		require.NoError(t, m.Validate())
		et, _ := m.Label(LabelEventType)
		id, ok := m.Label(LabelMessageID)
		require.True(t, ok)
		require.NotEmpty(t, id)
		ids[id] = true
		got[key{m.Name, et}] = m
		require.Equal(t, time.UTC, m.Time.Location())
		require.WithinDuration(t, time.Now(), m.Time, time.Minute, "oslo's zoneless timestamp read as UTC")
	}
	require.Len(t, ids, 4, "one message id per notification")
	for _, c := range []struct {
		name, event, unit string
		value             float64
		resource          string
	}{
		{"instance", "compute.instance.create.end", "instance", 1, instanceID},
		{"memory", "compute.instance.create.end", "MB", 2048, instanceID},
		{"vcpus", "compute.instance.create.end", "vcpu", 1, instanceID},
		{"disk.root.size", "compute.instance.create.end", "GB", 20, instanceID},
		{"memory", "compute.instance.exists", "MB", 4096, instanceID},
		{"vcpus", "compute.instance.exists", "vcpu", 2, instanceID},
		{"disk.root.size", "compute.instance.exists", "GB", 40, instanceID},
		{"instance", "compute.instance.delete.end", "instance", 1, instanceID},
		{"volume.size", "volume.create.end", "GB", 40, volumeID},
	} {
		m, ok := got[key{c.name, c.event}]
		require.True(t, ok, "%s from %s", c.name, c.event)
		require.Equal(t, c.unit, m.Unit, c.name)
		require.Equal(t, c.value, m.Value, "%s from %s", c.name, c.event)
		require.Equal(t, c.resource, m.ResourceID)
		require.Equal(t, projectID, m.ProjectID)
		require.Equal(t, userID, m.UserID)
	}
	deleted := got[key{"instance", "compute.instance.delete.end"}]
	state, _ := deleted.Label("state")
	require.Equal(t, "deleted", state)
	// What the Gnocchi sink makes the instance and volume resources of.
	created := got[key{"memory", "compute.instance.create.end"}]
	for k, v := range map[string]string{"gnocchi.resource_type": "instance", "image_ref": "0e4b1c6a-2d3f-4a5b-9c8d-7e6f5a4b3c2d",
		"display_name": "web-1", "flavor_id": "2", "flavor_name": "m1.small"} {
		got, _ := created.Label(k)
		require.Equal(t, v, got, k)
	}
	require.Equal(t, "compute-01", created.Host)
	vol := got[key{"volume.size", "volume.create.end"}]
	for k, v := range map[string]string{"gnocchi.resource_type": "volume", "display_name": "data-1", "volume_type": "lvm"} {
		got, _ := vol.Label(k)
		require.Equal(t, v, got, k)
	}

	s := d.Stats()
	require.Equal(t, uint64(6), s.Consumed)
	require.Equal(t, uint64(1), s.Rejected)
	require.Equal(t, uint64(1), s.Unmatched)
	require.Equal(t, uint64(5), s.Acked, "4 with measurements once durable, 1 unmatched")
	require.Equal(t, uint64(13), s.Measurements)
	// Everything was settled: nothing comes back once the consumer is gone.
	require.Equal(t, 0, r.messages(t, DefaultQueue))
	t.Logf("stats: %+v", s)
}

func TestNotificationAckedOnlyOnceDurable(t *testing.T) {
	r := startRabbit(t)
	r.declareExchanges(t, "nova")
	const queue = "meterkit-ack-test"
	exists := osloNote{"nova", "compute.compute-01", "compute.instance.exists", instancePayload("active", 2048, 1, 20)}

	// 1. The agent never says durable: the message stays unacknowledged, and
	// returns to the queue when the driver stops.
	d := newDriver(t, r, queue, "nova")
	hold := &recorder{mode: "hold"}
	stop := run(t, d, hold)
	r.waitBound(t, queue, "nova")
	publishOslo(t, r, exists)
	hold.waitFor(t, 4)
	require.Equal(t, 0, r.messages(t, queue), "delivered to the driver, not yet acknowledged")
	require.Equal(t, uint64(0), d.Stats().Acked)
	stop()
	require.Eventually(t, func() bool { return r.messages(t, queue) == 1 }, 5*time.Second, 50*time.Millisecond,
		"unacknowledged message back in the queue")
	for _, ack := range hold.held {
		ack(nil) // too late: the channel is gone, and the broker keeps the message
	}
	require.Equal(t, 1, r.messages(t, queue))

	// 2. The agent says it could not make them durable: the driver gives
	// the message back, and it comes again.
	d = newDriver(t, r, queue, "nova")
	fail := &recorder{mode: "fail"}
	stop = run(t, d, fail)
	fail.waitFor(t, 8) // delivered at least twice
	stop()
	fail.acks.Wait()
	require.GreaterOrEqual(t, d.Stats().Requeued, uint64(1))
	require.GreaterOrEqual(t, d.Stats().Redelivered, uint64(1))

	// 3. Durable at last: acknowledged, the queue is empty.
	d = newDriver(t, r, queue, "nova")
	ok := &recorder{}
	stop = run(t, d, ok)
	ms := ok.waitFor(t, 4)
	ok.acks.Wait()
	stop()
	require.Len(t, ms, 4)
	require.Equal(t, uint64(1), d.Stats().Acked)
	require.Equal(t, uint64(1), d.Stats().Redelivered)
	require.Equal(t, 0, r.messages(t, queue))
}

func TestNotificationDrivertest(t *testing.T) {
	r := startRabbit(t)
	r.declareExchanges(t, "openstack")
	const queue = "meterkit-drivertest"
	body, err := os.ReadFile(filepath.Join("testdata", "cinder-volume.exists.json"))
	require.NoError(t, err)
	cfg, err := driver.ConfigFrom(Config{URL: r.url(), Queue: queue, Exchanges: []string{"openstack"},
		RetryInterval: driver.Duration(200 * time.Millisecond)})
	require.NoError(t, err)
	f := func(c driver.Config) (driver.Driver, error) { return New(c) }
	bound, sent := false, 0
	drivertest.RunPush(t, f, cfg, func(ctx context.Context) error {
		if !bound { // the first Push declares and binds the queue
			for !r.bound(queue, "openstack") {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				time.Sleep(50 * time.Millisecond)
			}
			bound = true
		}
		// A message id of its own each time, as the services send: the
		// driver acknowledges a redelivered id it already made durable
		// without delivering it again.
		sent++
		id := fmt.Sprintf("0d9c8b7a-6f5e-4d3c-2b1a-%012d", sent)
		return r.publishRaw(ctx, "openstack", bytes.ReplaceAll(body, []byte("0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a"), []byte(id)))
	}, drivertest.WithRedelivery()) // acked to RabbitMQ only once durable: what was not comes again
}

// publisherStub answers the agent's batches over a transport.Pipe: "retry"
// while down, OK otherwise, keeping what it accepted.
type publisherStub struct {
	mu   sync.Mutex
	up   bool
	got  []meter.Measurement
	done chan struct{}
}

func (p *publisherStub) run(r transport.Receiver) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		for {
			d, err := r.Receive(ctx)
			if err != nil {
				return
			}
			p.mu.Lock()
			ack := transport.Ack{Status: transport.StatusRetry, Message: "store down"}
			if p.up {
				ack = transport.Ack{Status: transport.StatusOK}
				p.got = append(p.got, d.Envelope.Measurements...)
			}
			p.mu.Unlock()
			_ = d.Ack(ack)
		}
	}()
	return func() { cancel(); <-p.done }
}

func (p *publisherStub) measurements() []meter.Measurement {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]meter.Measurement(nil), p.got...)
}

// The real agent with a spool: a notification is acked to RabbitMQ once its
// measurements are in the spool, while the publisher is still down; the
// next agent on that spool delivers them.
func TestNotificationThroughAgentSpool(t *testing.T) {
	r := startRabbit(t)
	r.declareExchanges(t, "nova", "cinder")
	spool := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	d := newDriver(t, r, DefaultQueue, "nova", "cinder")
	s, recv := transport.Pipe()
	down := &publisherStub{}
	stopDown := down.run(recv)
	a, err := agent.New(s, agent.WithLogger(quiet), agent.WithID("compute-01"), agent.WithSpool(spool),
		agent.WithBatch(100, 20*time.Millisecond), agent.WithBackoff(5*time.Millisecond, 20*time.Millisecond),
		agent.WithDrainTimeout(50*time.Millisecond), agent.WithDriver("notification", d))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	r.waitBound(t, DefaultQueue, "nova", "cinder")
	publishOslo(t, r,
		osloNote{"nova", "compute.compute-01", "compute.instance.exists", instancePayload("active", 2048, 1, 20)},
		osloNote{"cinder", "volume.block-01", "volume.exists", map[string]any{
			"tenant_id": projectID, "user_id": userID, "volume_id": volumeID, "size": 10,
			"status": "available", "host": "block-01@lvm#lvm"}},
	)
	require.Eventually(t, func() bool { return d.Stats().Acked == 2 }, 10*time.Second, 10*time.Millisecond,
		"acked to RabbitMQ once spooled")
	require.Empty(t, down.measurements(), "the publisher is down")
	cancel()
	require.NoError(t, <-runErr, "unacknowledged batches stay in the spool")
	require.NoError(t, a.Close(context.Background()))
	stopDown()
	require.Equal(t, 0, r.messages(t, DefaultQueue), "nothing for RabbitMQ to redeliver")

	// The next agent on the spool delivers them.
	s, recv = transport.Pipe()
	up := &publisherStub{up: true}
	stopUp := up.run(recv)
	defer stopUp()
	a, err = agent.New(s, agent.WithLogger(quiet), agent.WithID("compute-01"), agent.WithSpool(spool))
	require.NoError(t, err)
	ctx, cancel = context.WithCancel(context.Background())
	go func() { runErr <- a.Run(ctx) }()
	require.Eventually(t, func() bool { return len(up.measurements()) == 5 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-runErr)
	require.NoError(t, a.Close(context.Background()))
	names := map[string]float64{}
	for _, m := range up.measurements() {
		names[m.Name] = m.Value
		want := "compute-01"
		if m.Name == "volume.size" {
			want = "block-01@lvm#lvm"
		}
		require.Equal(t, want, m.Host, "the host from the payload")
	}
	require.Equal(t, map[string]float64{"instance": 1, "memory": 2048, "vcpus": 1, "disk.root.size": 20, "volume.size": 10}, names)
}

// writeCerts writes a CA and a server certificate for 127.0.0.1 signed by
// it, as PEM files in dir.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "meterkit test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(crand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	require.NoError(t, err)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "rabbit"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(crand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	require.NoError(t, err)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644))
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", srvDER), write("key.pem", "PRIVATE KEY", keyDER)
}

func TestNotificationOverTLSWithCredentialsFile(t *testing.T) {
	needBinary(t, "/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server")
	certs := t.TempDir()
	ca, cert, key := writeCerts(t, certs)
	dir, err := os.MkdirTemp("/var/tmp", "mk-rabbit-")
	require.NoError(t, err)
	port := 0
	for range 200 {
		p := 20000 + rand.IntN(5000)
		if portFree(p) && portFree(p+10000) && portFree(p+20000) && portFree(p+1) {
			port = p
			break
		}
	}
	require.NotZero(t, port)
	r := &rabbit{t: t, dir: dir, port: port}
	r.run("start", dir, strconv.Itoa(port), strconv.Itoa(port+1), ca, cert, key)
	t.Cleanup(func() { r.run("stop", dir); os.RemoveAll(dir) })
	// The TLS listener may come a moment after the plain one.
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port+1))
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 30*time.Second, 100*time.Millisecond)
	r.declareExchanges(t, "openstack")

	creds := filepath.Join(certs, "creds")
	require.NoError(t, os.WriteFile(creds, []byte("guest:guest\n"), 0o600))
	d, err := NewDriver(Config{URL: "amqps://nobody:wrong@127.0.0.1:" + strconv.Itoa(port+1) + "/", CredentialsFile: creds,
		CA: ca, Exchanges: []string{"openstack"}, RetryInterval: driver.Duration(200 * time.Millisecond)}, nil)
	require.NoError(t, err)
	rec := &recorder{}
	stop := run(t, d, rec)
	r.waitBound(t, DefaultQueue, "openstack")
	body, err := os.ReadFile(filepath.Join("testdata", "nova-compute.instance.exists.json"))
	require.NoError(t, err)
	require.NoError(t, r.publishRaw(context.Background(), "openstack", body))
	ms := rec.waitFor(t, 4)
	rec.acks.Wait()
	stop()
	require.Len(t, ms, 4)
	require.Equal(t, uint64(1), d.Stats().Acked)
	require.Zero(t, d.Stats().Reconnects, "TLS and the credentials from the file worked the first time")
}

// A notification made durable whose broker ack was lost (the connection
// went first) comes back redelivered: the driver recognises its message id
// and acknowledges it without delivering it again.
func TestNotificationRedeliveryRecognised(t *testing.T) {
	r := startRabbit(t)
	r.declareExchanges(t, "nova")
	const queue = "meterkit-redelivery-test"
	d := newDriver(t, r, queue, "nova")
	hold := &recorder{mode: "hold"}
	stop := run(t, d, hold)
	r.waitBound(t, queue, "nova")
	publishOslo(t, r, osloNote{"nova", "compute.compute-01", "compute.instance.exists", instancePayload("active", 2048, 1, 20)})
	hold.waitFor(t, 4)
	stop() // the connection goes before the ack
	require.Eventually(t, func() bool { return r.messages(t, queue) == 1 }, 5*time.Second, 50*time.Millisecond)
	for _, ack := range hold.held {
		ack(nil) // durable now, but the broker cannot hear of it
	}
	require.Equal(t, uint64(1), d.Stats().AckFailed)

	again := &recorder{}
	stop = run(t, d, again)
	require.Eventually(t, func() bool { return d.Stats().Duplicates == 1 }, 10*time.Second, 10*time.Millisecond)
	stop()
	require.Empty(t, again.measurements(), "not delivered twice")
	require.Equal(t, 0, r.messages(t, queue), "acknowledged this time")
	require.Equal(t, uint64(1), d.Stats().Acked)
}

// swallowAcks wraps a push source and never passes the agent's acks on: the
// state of an agent killed after committing to its spool and before acking
// to RabbitMQ.
type swallowAcks struct {
	*Driver
	durable atomic.Int32
}

func (s *swallowAcks) Push(ctx context.Context, deliver driver.Deliver) error {
	return s.Driver.Push(ctx, func(d driver.Delivery) {
		d.Ack = func(err error) {
			if err == nil {
				s.durable.Add(1)
			}
		}
		deliver(d)
	})
}

// Committed to the spool, never acked to RabbitMQ: the next agent on that
// spool, with a fresh driver, recognises the redelivered notification by its
// message id, acks it without storing it again, and the publisher gets the
// measurements once.
func TestNotificationCommittedNotAckedIsNotDuplicated(t *testing.T) {
	r := startRabbit(t)
	r.declareExchanges(t, "nova")
	spool := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	up := &publisherStub{up: true}

	runAgent := func(d driver.Driver) (stop func()) {
		s, recv := transport.Pipe()
		stopPub := up.run(recv)
		a, err := agent.New(s, agent.WithLogger(quiet), agent.WithID("compute-01"), agent.WithSpool(spool),
			agent.WithBatch(100, 10*time.Millisecond), agent.WithDriver("notification", d))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- a.Run(ctx) }()
		return func() {
			cancel()
			require.NoError(t, <-runErr)
			require.NoError(t, a.Close(context.Background()))
			stopPub()
		}
	}

	first := &swallowAcks{Driver: newDriver(t, r, DefaultQueue, "nova")}
	stop := runAgent(first)
	r.waitBound(t, DefaultQueue, "nova")
	publishOslo(t, r, osloNote{"nova", "compute.compute-01", "compute.instance.exists", instancePayload("active", 2048, 1, 20)})
	require.Eventually(t, func() bool { return first.durable.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(up.measurements()) == 4 }, 10*time.Second, 10*time.Millisecond)
	stop()
	require.Eventually(t, func() bool { return r.messages(t, DefaultQueue) == 1 }, 5*time.Second, 50*time.Millisecond,
		"never acked: RabbitMQ has it again")

	second := newDriver(t, r, DefaultQueue, "nova")
	stop = runAgent(second)
	require.Eventually(t, func() bool { return second.Stats().Acked == 1 }, 10*time.Second, 10*time.Millisecond)
	stop()
	require.Equal(t, uint64(1), second.Stats().Redelivered)
	require.Equal(t, 0, r.messages(t, DefaultQueue))
	require.Len(t, up.measurements(), 4, "stored once, published once")
}
