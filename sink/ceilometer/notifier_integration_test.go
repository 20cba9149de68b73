//go:build integration

package ceilometer

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// idRecorder hands out sample ids and remembers them, so that a test knows
// what a Write sent.
type idRecorder struct {
	mu      sync.Mutex
	pending []string
}

func (r *idRecorder) next() string {
	id := newUUID()
	r.mu.Lock()
	r.pending = append(r.pending, id)
	r.mu.Unlock()
	return id
}

func (r *idRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.pending
	r.pending = nil
	return out
}

func testBatch(n int, start time.Time) []meter.Measurement {
	kinds := []meter.Kind{meter.Gauge, meter.Cumulative, meter.Delta}
	out := make([]meter.Measurement, n)
	for i := range out {
		m := meter.Measurement{
			Name:  "meterkit.test." + strconv.Itoa(i%7),
			Kind:  kinds[i%3],
			Unit:  []string{"B", "%", "s", ""}[i%4],
			Value: float64(i) + 0.25,
			Time:  start.Add(time.Duration(i) * time.Millisecond),
			Host:  "host-" + strconv.Itoa(i%3),
		}
		if i%2 == 0 {
			m.ResourceID = "res-" + strconv.Itoa(i%5)
			m.ProjectID = "proj-" + strconv.Itoa(i%2)
			m.UserID = "user-1"
			m.Labels = []meter.Label{{Key: "device", Value: "sda" + strconv.Itoa(i)}, {Key: "zone", Value: "é-1"}}
		}
		out[i] = m
	}
	return out
}

// TestNotifierThroughCeilometer publishes through a real RabbitMQ to the real
// Ceilometer notification agent, and reads the samples back from the agent's
// file publisher: every field must survive. A second consumer bound to the
// same routing key checks the signatures with Ceilometer's own
// verify_signature.
func TestNotifierThroughCeilometer(t *testing.T) {
	r := startRabbit(t)
	a := startAgent(t, r, false)

	// A tap: our own queue bound like the agent's, to see the raw bodies.
	conn, err := amqp.Dial(r.url())
	require.NoError(t, err)
	defer conn.Close()
	tapCh, err := conn.Channel()
	require.NoError(t, err)
	tap, err := tapCh.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.NoError(t, tapCh.QueueBind(tap.Name, DefaultRoutingKey, DefaultExchange, false, nil))
	deliveries, err := tapCh.Consume(tap.Name, "", true, true, false, false, nil)
	require.NoError(t, err)

	const secret = "telemetry-s3cret"
	t.Setenv("MK_TELEMETRY_SECRET", secret)
	s, err := sink.Open(context.Background(), "ceilometer+amqp://guest:guest@127.0.0.1:"+strconv.Itoa(r.port)+
		"/?exchange=ceilometer&durable=false&secret_env=MK_TELEMETRY_SECRET&batch=100")
	require.NoError(t, err)
	defer s.Close(context.Background())
	n := s.(*Notifier)
	ids := &idRecorder{}
	n.newID = ids.next

	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	batch := testBatch(250, start)
	begin := time.Now()
	require.NoError(t, n.Write(context.Background(), batch))
	t.Logf("250 samples in 3 notifications confirmed in %v", time.Since(begin).Round(time.Microsecond))
	sent := ids.take()
	require.Len(t, sent, 250)

	got := waitSamples(t, a.samplesFile(), sent, 30*time.Second)
	for i, id := range sent {
		m, g := batch[i], got[id]
		require.Equal(t, m.Name, g.Name, "sample %d", i)
		require.Equal(t, m.Kind.String(), g.Type)
		require.Equal(t, m.Unit, g.Unit)
		require.Equal(t, m.Value, g.Volume)
		rid := m.ResourceID
		if rid == "" {
			rid = m.Host
		}
		require.Equal(t, rid, g.ResourceID)
		require.Equal(t, nullable(m.ProjectID), g.ProjectID)
		require.Equal(t, nullable(m.UserID), g.UserID)
		require.Equal(t, m.Time.UTC().Format(timestampLayout), g.Timestamp)
		require.Equal(t, metadata(&m), g.ResourceMetadata)
		require.Equal(t, DefaultSource, g.Source)
	}

	// The raw notifications: envelope, headers, signatures.
	var bodies [][]byte
	timeout := time.After(10 * time.Second)
	for len(bodies) < 3 {
		select {
		case d := <-deliveries:
			require.Equal(t, "application/json", d.ContentType)
			bodies = append(bodies, d.Body)
		case <-timeout:
			t.Fatalf("tap got %d of 3 notifications", len(bodies))
		}
	}
	var all []Sample
	for _, b := range bodies {
		nt, err := DecodeEnvelope(b)
		require.NoError(t, err)
		require.Equal(t, EventType, nt.EventType)
		require.Equal(t, Priority, nt.Priority)
		require.LessOrEqual(t, len(nt.Payload.Samples), 100)
		all = append(all, nt.Payload.Samples...)
	}
	require.Len(t, all, 250)
	verifyWithCeilometer(t, all, secret)

	// A batch the publisher names: its samples' message_ids derive from the
	// name and the position, so writing (part of) it again repeats them,
	// and a consumer can drop the repeats.
	id := sink.BatchID{Tenant: "acme", Agent: "web1", Seq: 42}
	again := testBatch(5, start.Add(time.Hour))
	require.NoError(t, n.WriteFrom(context.Background(), id, 0, again))
	require.NoError(t, n.WriteFrom(context.Background(), id, 2, again[2:]))
	var want []string
	for i := range again {
		want = append(want, sampleID("acme/web1/42/", i))
	}
	got = waitSamples(t, a.samplesFile(), want, 30*time.Second)
	for i, id := range want {
		require.Equal(t, again[i].Value, got[id].Volume, "sample %d", i)
	}
	require.Eventually(t, func() bool { _, lines := readSamples(t, a.samplesFile()); return lines == 250+5+3 },
		30*time.Second, 100*time.Millisecond, "8 samples, 5 message_ids")
}

// verifyWithCeilometer runs Ceilometer's own verify_signature over samples.
func verifyWithCeilometer(t *testing.T, samples []Sample, secret string) {
	t.Helper()
	js, err := json.Marshal(samples)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "samples.json")
	require.NoError(t, os.WriteFile(f, js, 0o600))
	script := `
import json, sys
from ceilometer.publisher import utils
samples = json.load(open(sys.argv[1]))
bad = [s["message_id"] for s in samples if not utils.verify_signature(s, sys.argv[2])]
tampered = dict(samples[0], counter_volume=samples[0]["counter_volume"] + 1)
print(json.dumps({"checked": len(samples), "bad": bad, "tampered_ok": utils.verify_signature(tampered, sys.argv[2])}))
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, f, secret).CombinedOutput()
	require.NoError(t, err, "%s", out)
	var res struct {
		Checked    int      `json:"checked"`
		Bad        []string `json:"bad"`
		TamperedOK bool     `json:"tampered_ok"`
	}
	require.NoError(t, json.Unmarshal(out, &res), "%s", out)
	require.Equal(t, len(samples), res.Checked)
	require.Empty(t, res.Bad, "Ceilometer rejects these signatures")
	require.False(t, res.TamperedOK, "a changed sample must fail verification")
}

// TestNotifierBrokerRestart restarts RabbitMQ while a writer streams batches,
// retrying each until Write returns nil, as the publisher does. Every sample
// of a confirmed Write must come out of Ceilometer's pipeline. The exchange
// and the agent's queue are durable here (the sink's durable=true, the
// agent's amqp_durable_queues), so that what the broker confirmed survives
// its restart; with Ceilometer's default non-durable queue a restart drops
// whatever sits in the queue, confirmed or not.
func TestNotifierBrokerRestart(t *testing.T) {
	r := startRabbit(t)
	a := startAgent(t, r, true)

	s, err := NewNotifier(r.url(), WithDurable(true), WithBatchSize(25), WithTimeout(5*time.Second), WithDialTimeout(2*time.Second))
	require.NoError(t, err)
	defer s.Close(context.Background())
	ids := &idRecorder{}
	s.newID = ids.next

	const batches, perBatch = 60, 50
	var confirmed []string
	var failures int
	done := make(chan struct{})
	restarted := make(chan time.Duration, 1)
	go func() {
		defer close(done)
		start := time.Now().UTC()
		for i := range batches {
			b := testBatch(perBatch, start.Add(time.Duration(i)*time.Second))
			for {
				err := s.Write(context.Background(), b)
				got := ids.take()
				if err == nil {
					confirmed = append(confirmed, got...)
					break
				}
				failures++
				require.False(t, sink.IsPermanent(err), "a broker restart is not permanent: %v", err)
				time.Sleep(100 * time.Millisecond)
			}
			if i == 10 {
				go func() {
					begin := time.Now()
					r.stop()
					time.Sleep(time.Second)
					r.start()
					restarted <- time.Since(begin)
				}()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("writer did not finish")
	}
	select {
	case d := <-restarted:
		t.Logf("broker down and up again in %v; %d failed Writes retried", d.Round(time.Millisecond), failures)
	case <-time.After(time.Minute):
		t.Fatal("restart did not finish")
	}
	require.Positive(t, failures, "the restart should have failed some Writes")
	require.Len(t, confirmed, batches*perBatch)
	waitSamples(t, a.samplesFile(), confirmed, 60*time.Second)
	_, lines := readSamples(t, a.samplesFile())
	t.Logf("%d confirmed samples all in Ceilometer's file (%d lines: %d duplicates or unconfirmed extras)",
		len(confirmed), lines, lines-len(confirmed))
}

// TestNotifierNoRoute: with no queue bound (no agent), mandatory publishing
// turns the loss into a retryable error.
func TestNotifierNoRoute(t *testing.T) {
	r := startRabbit(t)
	s, err := NewNotifier(r.url(), WithExchange("meterkit-noroute"))
	require.NoError(t, err)
	defer s.Close(context.Background())
	err = s.Write(context.Background(), testBatch(3, time.Now()))
	var ne *NackError
	require.ErrorAs(t, err, &ne)
	require.Equal(t, 1, ne.Returned)
	require.Contains(t, err.Error(), "NO_ROUTE")
	require.False(t, sink.IsPermanent(err))

	// A wrong password never shows in the error.
	bad, err := NewNotifier("amqp://guest:Wr0ng-pa55@127.0.0.1:" + strconv.Itoa(r.port) + "/")
	require.NoError(t, err)
	err = bad.Write(context.Background(), testBatch(1, time.Now()))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "Wr0ng-pa55")
	t.Log(err)

	// Declaring the exchange durable when it exists non-durable fails
	// with a hint.
	s2, err := NewNotifier(r.url(), WithExchange("meterkit-noroute"), WithDurable(true))
	require.NoError(t, err)
	err = s2.Write(context.Background(), testBatch(1, time.Now()))
	require.ErrorContains(t, err, "PRECONDITION_FAILED")
	require.ErrorContains(t, err, "durable=true")
	t.Log(err)
}

// TestNotifierTLS publishes over amqps:// to a RabbitMQ TLS listener whose
// certificate the test made, checking the server against that CA.
func TestNotifierTLS(t *testing.T) {
	needBinary(t, "/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server")
	dir, err := os.MkdirTemp("/var/tmp", "mk-rabbit-tls-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	ca, cert, key := writeCerts(t, t.TempDir())
	r := &rabbit{t: t, dir: dir, port: rabbitPort(t)}
	tlsPort := r.port + 1
	if !portFree(tlsPort) {
		t.Skipf("port %d taken", tlsPort)
	}
	r.run("start", dir, strconv.Itoa(r.port), strconv.Itoa(tlsPort), ca, cert, key)
	defer r.stop()

	// A queue bound to the routing key, so that mandatory publishing routes.
	conn, err := amqp.Dial(r.url())
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.ExchangeDeclare(DefaultExchange, "topic", false, false, false, false, nil))
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(q.Name, DefaultRoutingKey, DefaultExchange, false, nil))

	s, err := sink.Open(context.Background(), "ceilometer+amqps://guest:guest@127.0.0.1:"+strconv.Itoa(tlsPort)+
		"/?ca="+ca+"&server_name=localhost")
	require.NoError(t, err)
	defer s.Close(context.Background())
	require.NoError(t, s.Write(context.Background(), testBatch(10, time.Now())))
	got, err := ch.QueueDeclarePassive(q.Name, false, true, true, false, nil)
	require.NoError(t, err)
	require.Equal(t, 1, got.Messages)

	// Without the CA the handshake fails: retryable, and says where.
	s2, err := sink.Open(context.Background(), "ceilometer+amqps://guest:guest@127.0.0.1:"+strconv.Itoa(tlsPort)+"/")
	require.NoError(t, err)
	err = s2.Write(context.Background(), testBatch(1, time.Now()))
	require.ErrorContains(t, err, "certificate")
	require.False(t, sink.IsPermanent(err))
}
