//go:build integration

package ceilometer

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// BenchmarkNotifier publishes batches of 1,000 samples (10 notifications of
// 100) to a real RabbitMQ with publisher confirms and mandatory routing, and
// reports samples per second confirmed. A bounded queue stands in for the
// notification agent's, so that every message is routed.
func BenchmarkNotifier(b *testing.B) {
	r := startRabbit(b)
	conn, err := amqp.Dial(r.url())
	require.NoError(b, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(b, err)
	require.NoError(b, ch.ExchangeDeclare(DefaultExchange, "topic", false, false, false, false, nil))
	_, err = ch.QueueDeclare(DefaultRoutingKey, false, false, false, false, amqp.Table{"x-max-length": int32(1000)})
	require.NoError(b, err)
	require.NoError(b, ch.QueueBind(DefaultRoutingKey, DefaultRoutingKey, DefaultExchange, false, nil))

	s, err := NewNotifier(r.url())
	require.NoError(b, err)
	defer s.Close(context.Background())
	batch := testBatch(1000, time.Now())
	require.NoError(b, s.Write(context.Background(), batch)) // connect
	n := 0
	b.ResetTimer()
	for b.Loop() {
		if err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		n += len(batch)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
}
