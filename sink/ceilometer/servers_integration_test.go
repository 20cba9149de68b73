//go:build integration

package ceilometer

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// scripts returns the path of a script in scripts/openstack, found from the
// module root.
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

// rabbitPort picks an AMQP port whose companions (epmd at +10000,
// distribution at +20000) are free too.
func rabbitPort(t testing.TB) int {
	for range 200 {
		p := 20000 + rand.IntN(15000)
		if portFree(p) && portFree(p+10000) && portFree(p+20000) {
			return p
		}
	}
	t.Fatal("no free port triple for RabbitMQ")
	return 0
}

// rabbit is a RabbitMQ node started by scripts/openstack/rabbitmq.sh.
type rabbit struct {
	t    testing.TB
	dir  string
	port int
}

func (r *rabbit) url() string { return "amqp://guest:guest@127.0.0.1:" + strconv.Itoa(r.port) + "/" }

func (r *rabbit) run(cmd ...string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, scripts(r.t, "rabbitmq.sh"), cmd...).CombinedOutput()
	require.NoError(r.t, err, "rabbitmq.sh %v: %s", cmd, out)
}

func (r *rabbit) start() { r.run("start", r.dir, strconv.Itoa(r.port)) }
func (r *rabbit) stop()  { r.run("stop", r.dir) }

func startRabbit(t testing.TB) *rabbit {
	t.Helper()
	needBinary(t, "/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server")
	dir, err := os.MkdirTemp("/var/tmp", "mk-rabbit-")
	require.NoError(t, err)
	r := &rabbit{t: t, dir: dir, port: rabbitPort(t)}
	begin := time.Now()
	r.start()
	t.Logf("RabbitMQ on 127.0.0.1:%d up in %v", r.port, time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		r.stop()
		os.RemoveAll(dir)
	})
	return r
}

// agent is a Ceilometer notification agent writing samples to a file.
type agent struct {
	dir string
}

func (a *agent) samplesFile() string { return filepath.Join(a.dir, "samples.log") }

func startAgent(t testing.TB, r *rabbit, durable bool) *agent {
	t.Helper()
	needBinary(t, "/usr/bin/ceilometer-agent-notification", "ceilometer-agent-notification")
	dir, err := os.MkdirTemp("/var/tmp", "mk-ceilometer-")
	require.NoError(t, err)
	args := []string{"start", dir, strconv.Itoa(r.port)}
	if durable {
		args = append(args, "durable")
	}
	out, err := exec.Command(scripts(t, "ceilometer-agent.sh"), args...).CombinedOutput()
	require.NoError(t, err, "ceilometer-agent.sh: %s", out)
	t.Cleanup(func() {
		_ = exec.Command(scripts(t, "ceilometer-agent.sh"), "stop", dir).Run()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("tail of agent.log:\n%s", b)
		}
		os.RemoveAll(dir)
	})
	begin := time.Now()
	waitConsumer(t, r, 90*time.Second)
	t.Logf("Ceilometer notification agent consuming after %v", time.Since(begin).Round(time.Millisecond))
	return &agent{dir: dir}
}

// waitConsumer waits until queue notifications.sample has a consumer: the
// agent's only sign of readiness.
func waitConsumer(t testing.TB, r *rabbit, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if n := consumers(r.url(), DefaultRoutingKey); n >= 1 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no consumer on queue %s after %v", DefaultRoutingKey, limit)
}

func consumers(url, queue string) int {
	conn, err := amqp.Dial(url)
	if err != nil {
		return -1
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return -1
	}
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		return -1
	}
	return q.Consumers
}

// fileSample is a line of Ceilometer's file publisher (Sample.as_dict()).
type fileSample struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Type             string            `json:"type"`
	Unit             string            `json:"unit"`
	Volume           float64           `json:"volume"`
	UserID           *string           `json:"user_id"`
	ProjectID        *string           `json:"project_id"`
	ResourceID       string            `json:"resource_id"`
	Timestamp        string            `json:"timestamp"`
	ResourceMetadata map[string]string `json:"resource_metadata"`
	Source           string            `json:"source"`
}

// readSamples reads what the agent wrote so far, by sample id.
func readSamples(t testing.TB, path string) (map[string]fileSample, int) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]fileSample{}
	lines := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var s fileSample
		require.NoError(t, json.Unmarshal([]byte(line), &s), "line %q", line)
		out[s.ID] = s
		lines++
	}
	require.NoError(t, sc.Err())
	return out, lines
}

// waitSamples waits until the file holds every id in want.
func waitSamples(t testing.TB, path string, want []string, limit time.Duration) map[string]fileSample {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got, _ := readSamples(t, path)
		missing := 0
		for _, id := range want {
			if _, ok := got[id]; !ok {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d samples missing from %s after %v", missing, len(want), path, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
