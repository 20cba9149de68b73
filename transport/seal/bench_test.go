package seal_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/seal"
)

const benchBatch = 1000

// benchEnvelope is a batch of host measurements as the host drivers make
// them: the envelope's host, a resource id and a label or two.
func benchEnvelope(n int) *transport.Envelope {
	env := &transport.Envelope{Tenant: "acme", Agent: "web-1", Seq: 1, SentAt: now, Host: "web-1.example.net"}
	for i := range n {
		m := meter.Measurement{
			Name: fmt.Sprintf("disk.read.bytes.%d", i%50), Kind: meter.Cumulative, Unit: "B",
			Value: float64(i) * 512, Time: now.Add(time.Duration(i) * time.Millisecond),
			Host: env.Host, ResourceID: fmt.Sprintf("sd%c", 'a'+i%26),
			Labels: []meter.Label{{Key: "device", Value: "sda"}},
		}
		if i%3 == 0 {
			m.Labels = append(m.Labels, meter.Label{Key: "mount", Value: "/var"})
		}
		env.Measurements = append(env.Measurements, m)
	}
	return env
}

func report(b *testing.B, n, frameLen int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/measurement")
	b.ReportMetric(float64(frameLen), "B/frame")
}

// BenchmarkSeal compares, for envelopes of 1,000 measurements and of one,
// the unsealed codec (encode, decode) with sealing (seal + encode) and
// opening (decode + open), in the same run. The difference is the cost of
// sealing, per measurement and per envelope.
func BenchmarkSeal(b *testing.B) {
	for _, n := range []int{benchBatch, 1} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) { benchSeal(b, n) })
	}
}

func benchSeal(b *testing.B, n int) {
	env := benchEnvelope(n)
	s, err := seal.NewSealer("acme", fuzzKey)
	if err != nil {
		b.Fatal(err)
	}
	o := fuzzOpener(b)
	plainFrame, _ := transport.AppendEnvelope(nil, env)
	sealed, _, _ := s.SealAt(nil, env, now)
	sealedFrame, _ := transport.AppendEnvelope(nil, &sealed)

	b.Run("encode/unsealed", func(b *testing.B) {
		buf := append([]byte(nil), plainFrame...)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = transport.AppendEnvelope(buf[:0], env)
		}
		report(b, n, len(buf))
	})
	b.Run("encode/sealed", func(b *testing.B) {
		var sbuf []byte
		buf := append([]byte(nil), sealedFrame...)
		b.ReportAllocs()
		for b.Loop() {
			var out transport.Envelope
			out, sbuf, err = s.SealAt(sbuf, env, now)
			if err != nil {
				b.Fatal(err)
			}
			buf, _ = transport.AppendEnvelope(buf[:0], &out)
		}
		report(b, n, len(buf))
	})
	b.Run("decode/unsealed", func(b *testing.B) {
		var d transport.Decoder
		var got transport.Envelope
		b.ReportAllocs()
		for b.Loop() {
			if err := d.Decode(plainFrame, &got); err != nil {
				b.Fatal(err)
			}
		}
		report(b, n, len(plainFrame))
	})
	b.Run("decode/sealed", func(b *testing.B) {
		var d transport.Decoder
		var got transport.Envelope
		b.ReportAllocs()
		for b.Loop() {
			if err := d.Decode(sealedFrame, &got); err != nil {
				b.Fatal(err)
			}
			if err := o.Open(&got, &d); err != nil {
				b.Fatal(err)
			}
		}
		if len(got.Measurements) != n {
			b.Fatal(len(got.Measurements))
		}
		report(b, n, len(sealedFrame))
	})
}
