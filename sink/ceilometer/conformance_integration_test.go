//go:build integration

package ceilometer

import (
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/sink/sinktest"
)

// The notifier against a real RabbitMQ. Its store is a queue of the test's
// bound to the exchange and routing key as the notification agent's is: a
// confirmed publish is in it, and Read takes it out with basic.get. The sink
// reaches the broker through a proxy of the test's, which Stall makes hold
// every byte, both ways, until released.
func TestNotifierConformance(t *testing.T) {
	r := startRabbit(t)
	var (
		tap  *amqp.Channel
		q    string
		held []meter.Measurement
		p    *proxy
	)
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			conn, err := amqp.Dial(r.url())
			require.NoError(t, err)
			t.Cleanup(func() { _ = conn.Close() })
			tap, err = conn.Channel()
			require.NoError(t, err)
			require.NoError(t, tap.ExchangeDeclare(DefaultExchange, "topic", false, false, false, false, nil))
			qu, err := tap.QueueDeclare("", false, true, true, false, nil)
			require.NoError(t, err)
			require.NoError(t, tap.QueueBind(qu.Name, DefaultRoutingKey, DefaultExchange, false, nil))
			q, held = qu.Name, nil

			p = newProxy(t, "127.0.0.1:"+u(r.url()).Port())
			s, err := NewNotifier("amqp://guest:guest@" + p.addr() + "/")
			require.NoError(t, err)
			return s
		},
		Read: func(t *testing.T) []meter.Measurement {
			for {
				d, ok, err := tap.Get(q, true)
				require.NoError(t, err)
				if !ok {
					return held
				}
				n, err := DecodeEnvelope(d.Body)
				require.NoError(t, err)
				for _, s := range n.Payload.Samples {
					held = append(held, fromSample(t, s))
				}
			}
		},
		Normalize: func(m meter.Measurement) meter.Measurement {
			m.Labels = dropLabel(m.Labels, "message_id")
			if m.ResourceID == "" {
				m.ResourceID = m.Host
			}
			return m
		},
		// Neither ResourceID nor Host: Ceilometer has no resource for it.
		Refused: &meter.Measurement{Name: "refused", Kind: meter.Gauge, Value: 1, Time: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)},
		Stall: func(*testing.T) func() {
			p.stall()
			return p.release
		},
		ID: func(m meter.Measurement) string { id, _ := m.Label("message_id"); return id },
	})
}

func u(raw string) *url.URL {
	x, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	return x
}

func dropLabel(ls []meter.Label, key string) []meter.Label {
	var out []meter.Label
	for _, l := range ls {
		if l.Key != key {
			out = append(out, l)
		}
	}
	return out
}

// fromSample turns a sample back into a measurement: host from the
// metadata, the other metadata and message_id as labels.
func fromSample(t *testing.T, s Sample) meter.Measurement {
	t.Helper()
	m := meter.Measurement{Name: s.CounterName, Unit: s.CounterUnit, ResourceID: s.ResourceID}
	var err error
	m.Kind, err = meter.ParseKind(s.CounterType)
	require.NoError(t, err)
	m.Value, err = s.CounterVolume.Float64()
	require.NoError(t, err)
	m.Time, err = time.Parse(v2Timestamp, s.Timestamp)
	require.NoError(t, err)
	if s.ProjectID != nil {
		m.ProjectID = *s.ProjectID
	}
	if s.UserID != nil {
		m.UserID = *s.UserID
	}
	for k, v := range s.ResourceMetadata {
		if k == "host" {
			m.Host = v
			continue
		}
		m.Labels = append(m.Labels, meter.Label{Key: k, Value: v})
	}
	m.Labels = append(m.Labels, meter.Label{Key: "message_id", Value: s.MessageID})
	return m
}

// proxy forwards TCP connections to target; stall makes it hold what it
// reads, both ways, until release.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	hold  chan struct{} // non-nil while stalled
	conns map[net.Conn]struct{}
	done  chan struct{}
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hold == nil {
		p.hold = make(chan struct{})
	}
}

func (p *proxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hold != nil {
		close(p.hold)
		p.hold = nil
	}
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		_ = c.Close()
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c) || !p.track(up) {
			_ = c.Close()
			_ = up.Close()
			return
		}
		p.wg.Add(2)
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

// pipe copies from src to dst, waiting out stalls before each write.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			h := p.hold
			p.mu.Unlock()
			if h != nil {
				select {
				case <-h:
				case <-p.done:
					return
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) close() {
	p.mu.Lock()
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	_ = p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
