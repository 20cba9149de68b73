package transport_test

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/internal/wirepb"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus under testdata/fuzz")

// seedFrames are valid frames of every shape, the start of FuzzDecode's corpus.
func seedFrames() [][]byte {
	frames := [][]byte{
		mustEncode(&transport.Envelope{}),
		mustEncode(hostBatch(3)),
		mustEncode(&transport.Envelope{Tenant: "acme", Seq: 1, Sealed: []byte{1, 2, 3}, Auth: []byte("k1")}),
		mustEncode(&transport.Envelope{Host: "h", Measurements: []meter.Measurement{
			{Name: "a", Host: ""}, {Name: "b", Host: "other", Kind: 200, Labels: []meter.Label{{Key: "k", Value: "v"}, {}}},
		}}),
		mustEncode(stateBatch(6, 2)),
	}
	r := rand.New(rand.NewPCG(7, 8))
	for range 4 {
		env := randomEnvelope(r)
		frames = append(frames, mustEncode(&env))
	}
	return frames
}

func seedAcks() [][]byte {
	return [][]byte{
		transport.AppendAck(nil, transport.Ack{}),
		transport.AppendAck(nil, transport.Ack{Seq: 1}),
		transport.AppendAck(nil, transport.Ack{Seq: 1 << 40, Status: transport.StatusRetry, Message: "sink down"}),
		transport.AppendAck(nil, transport.Ack{Seq: 2, Status: transport.StatusRejected, Message: "bad"}),
		transport.AppendAck(nil, transport.Ack{Seq: 3, Version: transport.MaxVersion}),
	}
}

// TestWriteSeedCorpus rewrites testdata/fuzz/{FuzzDecode,FuzzDecodeAck}
// when run with -update-corpus.
func TestWriteSeedCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite the seed corpus")
	}
	write := func(target string, frames [][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for i, f := range frames {
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(f)))
			require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(data), 0o644))
		}
	}
	write("FuzzDecode", seedFrames())
	write("FuzzDecodeAck", seedAcks())
}

// FuzzDecode checks that Decode never panics, fails only with the
// package's errors, agrees with the generated protobuf code whenever both
// accept a frame, and that what it decodes encodes and decodes back to the
// same envelope.
func FuzzDecode(f *testing.F) {
	for _, fr := range seedFrames() {
		f.Add(fr)
	}
	small := transport.Decoder{Limits: transport.Limits{MaxFrameSize: 512, MaxMeasurements: 3, MaxLabels: 2, MaxStringLen: 16}}
	var d transport.Decoder
	var env, again transport.Envelope
	f.Fuzz(func(t *testing.T, frame []byte) {
		if err := small.Decode(frame, &env); err != nil {
			requireDecodeError(t, err)
		}
		err := d.Decode(frame, &env)
		if err != nil {
			requireDecodeError(t, err)
			return
		}
		got := decoded(&env)

		var p wirepb.Envelope
		if proto.Unmarshal(frame, &p) == nil {
			require.Equal(t, fromPB(&p), got, "generated code decodes differently")
		}

		b, err := transport.AppendEnvelope(nil, &env)
		require.NoError(t, err)
		var d2 transport.Decoder
		require.NoError(t, d2.Decode(b, &again))
		require.Equal(t, got, decoded(&again), "re-encoded envelope decodes differently")
	})
}

func requireDecodeError(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, transport.ErrMalformed) && !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("error wraps neither ErrMalformed nor ErrTooLarge: %v", err)
	}
}

// FuzzDecodeAck checks that DecodeAck never panics, agrees with the
// generated code, and round-trips through AppendAck.
func FuzzDecodeAck(f *testing.F) {
	for _, fr := range seedAcks() {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := transport.DecodeAck(b)
		if err != nil {
			require.ErrorIs(t, err, transport.ErrMalformed)
			return
		}
		var p wirepb.Ack
		if proto.Unmarshal(b, &p) == nil {
			require.Equal(t, transport.Ack{Seq: p.Seq, Status: transport.Status(p.Status), Message: p.Message}, transport.Ack{Seq: a.Seq, Status: a.Status, Message: a.Message})
			require.Equal(t, p.Version, a.Version)
		}
		again, err := transport.DecodeAck(transport.AppendAck(nil, a))
		require.NoError(t, err)
		require.Equal(t, a, again)
	})
}
