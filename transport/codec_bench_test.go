package transport_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/internal/wirepb"
)

// benchBatch is the size of the batch the benchmarks encode and decode.
const benchBatch = 1000

// report adds per-measurement figures to a benchmark whose every
// iteration handles one batch of benchBatch measurements in frameLen bytes.
func report(b *testing.B, frameLen int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchBatch, "ns/measurement")
	b.ReportMetric(float64(frameLen)/benchBatch, "B/measurement")
}

// The "hand" sub-benchmarks measure this package's codec; the "proto" ones
// the same batch through the code generated from envelope.proto, as a
// baseline. The baseline leaves out converting between meter.Measurement
// and the generated types, which real use of it would add.

func BenchmarkEncode(b *testing.B) {
	env := hostBatch(benchBatch)
	b.Run("hand", func(b *testing.B) {
		buf, _ := transport.AppendEnvelope(nil, env)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = transport.AppendEnvelope(buf[:0], env)
		}
		report(b, len(buf))
	})
	b.Run("proto", func(b *testing.B) {
		p := toPB(env)
		buf, _ := proto.Marshal(p)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = proto.MarshalOptions{}.MarshalAppend(buf[:0], p)
		}
		report(b, len(buf))
	})
}

func BenchmarkDecode(b *testing.B) {
	frame := mustEncode(hostBatch(benchBatch))
	b.Run("hand", func(b *testing.B) {
		var d transport.Decoder
		var env transport.Envelope
		b.ReportAllocs()
		for b.Loop() {
			if err := d.Decode(frame, &env); err != nil {
				b.Fatal(err)
			}
		}
		report(b, len(frame))
	})
	b.Run("proto", func(b *testing.B) {
		var p wirepb.Envelope
		b.ReportAllocs()
		for b.Loop() {
			if err := proto.Unmarshal(frame, &p); err != nil {
				b.Fatal(err)
			}
		}
		report(b, len(frame))
	})
}

func BenchmarkRoundTrip(b *testing.B) {
	env := hostBatch(benchBatch)
	b.Run("hand", func(b *testing.B) {
		buf, _ := transport.AppendEnvelope(nil, env)
		var d transport.Decoder
		var got transport.Envelope
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = transport.AppendEnvelope(buf[:0], env)
			if err := d.Decode(buf, &got); err != nil {
				b.Fatal(err)
			}
		}
		report(b, len(buf))
	})
	b.Run("proto", func(b *testing.B) {
		p := toPB(env)
		buf, _ := proto.Marshal(p)
		var q wirepb.Envelope
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = proto.MarshalOptions{}.MarshalAppend(buf[:0], p)
			if err := proto.Unmarshal(buf, &q); err != nil {
				b.Fatal(err)
			}
		}
		report(b, len(buf))
	})
}
