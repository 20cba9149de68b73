package seal_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/seal"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus under testdata/fuzz")

// fuzzKey is the fixed key of tenant "acme", id "k1", in the fuzz targets.
var fuzzKey = seal.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef"), Created: now}

// newOpener is seal.NewOpener for tests: an option error fails tb.
func newOpener(tb testing.TB, keys seal.KeyStore, opts ...seal.OpenerOption) *seal.Opener {
	tb.Helper()
	o, err := seal.NewOpener(keys, opts...)
	require.NoError(tb, err)
	return o
}

func fuzzOpener(tb testing.TB) *seal.Opener {
	kr, err := seal.NewKeyring(&seal.KeyFile{Tenants: map[string]*seal.TenantKeys{"acme": {Keys: []seal.Key{fuzzKey}}}})
	require.NoError(tb, err)
	return newOpener(tb, kr, seal.WithClock(clock))
}

// seedSealed are frames of sealed envelopes, valid and not.
func seedSealed(tb testing.TB) [][]byte {
	s, err := seal.NewSealer("acme", fuzzKey)
	require.NoError(tb, err)
	var frames [][]byte
	for i, env := range []*transport.Envelope{
		acmeEnvelope(1),
		{Tenant: "acme", Agent: "a", Seq: 2},
		{Tenant: "acme", Agent: "a", Seq: 3, Measurements: acmeEnvelope(3).Measurements[:1]},
	} {
		sealed, _, err := s.SealAt(nil, env, now.Add(time.Duration(i)*time.Second))
		require.NoError(tb, err)
		frame, err := transport.AppendEnvelope(nil, &sealed)
		require.NoError(tb, err)
		frames = append(frames, frame)
	}
	unsealed, err := transport.AppendEnvelope(nil, acmeEnvelope(4))
	require.NoError(tb, err)
	return append(frames, unsealed, frames[0][:len(frames[0])/2])
}

// seedPayloads are plaintexts of sealed envelopes.
func seedPayloads(tb testing.TB) [][]byte {
	env := acmeEnvelope(1)
	p, err := transport.AppendMeasurements(nil, env.Measurements, env.Host)
	require.NoError(tb, err)
	return [][]byte{p, {}, p[:len(p)/3], {0x3a, 0x00}, {0x3a, 0x02, 0x52, 0x00}}
}

func seedKeyFiles(tb testing.TB) [][]byte {
	f := newFixture(tb)
	good, err := f.kf.Marshal()
	require.NoError(tb, err)
	ex, err := f.kf.Export("acme", "")
	require.NoError(tb, err)
	agent, err := ex.Marshal()
	require.NoError(tb, err)
	return [][]byte{good, agent, []byte(`{"tenants":{}}`), []byte(`{"tenants":{"a":{"keys":[{"id":"k1","key":"!!"}]}}}`), []byte(`{`)}
}

// TestWriteSeedCorpus rewrites testdata/fuzz/{FuzzOpen,FuzzOpenPayload,FuzzParseKeyFile}
// when run with -update-corpus.
func TestWriteSeedCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite the seed corpus")
	}
	write := func(target string, inputs [][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for i, b := range inputs {
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
			require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(data), 0o644))
		}
	}
	write("FuzzOpen", seedSealed(t))
	write("FuzzOpenPayload", seedPayloads(t))
	write("FuzzParseKeyFile", seedKeyFiles(t))
}

// requireOpenError checks that err is one of the errors Open documents.
func requireOpenError(t *testing.T, err error) {
	t.Helper()
	for _, want := range []error{seal.ErrUnsealed, seal.ErrUnknownTenant, seal.ErrWrongKey, seal.ErrTampered,
		seal.ErrOutOfWindow, transport.ErrMalformed, transport.ErrTooLarge} {
		if errors.Is(err, want) {
			return
		}
	}
	t.Fatalf("Open failed with an undocumented error: %v", err)
}

// FuzzOpen decodes and opens arbitrary frames: Open never panics, fails
// only with its documented errors, and what opens respects the limits.
func FuzzOpen(f *testing.F) {
	for _, fr := range seedSealed(f) {
		f.Add(fr)
	}
	o := fuzzOpener(f)
	lim := transport.Limits{MaxFrameSize: 4096, MaxMeasurements: 8, MaxLabels: 4, MaxStringLen: 64}
	dec := transport.Decoder{Limits: lim}
	var env transport.Envelope
	f.Fuzz(func(t *testing.T, frame []byte) {
		if dec.Decode(frame, &env) != nil {
			return
		}
		sealed := len(env.Sealed) > 0
		if err := o.Open(&env, &dec); err != nil {
			requireOpenError(t, err)
			require.Empty(t, env.Measurements)
			return
		}
		require.True(t, sealed, "an unsealed envelope opened")
		require.LessOrEqual(t, len(env.Measurements), lim.MaxMeasurements)
		for _, m := range env.Measurements {
			require.LessOrEqual(t, len(m.Labels), lim.MaxLabels)
		}
	})
}

// sealRaw seals plain as the payload of env with fuzzKey at time at,
// following the format documented in envelope.proto rather than calling
// the Sealer, so that it checks that documentation too.
func sealRaw(tb testing.TB, env *transport.Envelope, plain []byte, at time.Time) {
	mac := hmac.New(sha256.New, fuzzKey.Secret)
	mac.Write([]byte("meterkit seal key check v1"))
	check := mac.Sum(nil)[:16]
	nonce := []byte("fixed nonce!") // 12 bytes; never do this outside a test
	auth := []byte{1, byte(len(fuzzKey.ID))}
	auth = append(auth, fuzzKey.ID...)
	auth = append(auth, nonce...)
	auth = binary.BigEndian.AppendUint64(auth, uint64(at.UnixNano()))
	auth = append(auth, check...)
	env.Auth = auth

	lp := func(b []byte, s string) []byte {
		return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
	}
	aad := []byte("meterkit-seal-v1")
	aad = binary.BigEndian.AppendUint32(aad, 1)
	aad = lp(aad, env.Tenant)
	aad = lp(aad, env.Agent)
	aad = binary.BigEndian.AppendUint64(aad, env.Seq)
	aad = binary.BigEndian.AppendUint64(aad, uint64(env.SentAt.UnixNano()))
	aad = lp(aad, env.Host)
	aad = lp(aad, string(auth))
	require.Equal(tb, string(seal.AppendAAD(nil, env)), string(aad), "AppendAAD differs from the documented encoding")

	block, err := aes.NewCipher(fuzzKey.Secret)
	require.NoError(tb, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(tb, err)
	env.Sealed = gcm.Seal(nil, nonce, plain, aad)
}

func TestDocumentedFormat(t *testing.T) {
	env := acmeEnvelope(1)
	plain, err := transport.AppendMeasurements(nil, env.Measurements, env.Host)
	require.NoError(t, err)
	raw := *env
	raw.Measurements = nil
	sealRaw(t, &raw, plain, now)
	got := wire(t, &raw)
	var d transport.Decoder
	require.NoError(t, fuzzOpener(t).Open(got, &d))
	requireMeasurements(t, env.Measurements, got.Measurements)
}

// FuzzOpenPayload seals arbitrary plaintexts with the right key, so that
// they authenticate and reach the payload decoder inside Open: it never
// panics, fails only with ErrMalformed or ErrTooLarge, and keeps the limits.
func FuzzOpenPayload(f *testing.F) {
	for _, p := range seedPayloads(f) {
		f.Add(p)
	}
	o := fuzzOpener(f)
	lim := transport.Limits{MaxFrameSize: 4096, MaxMeasurements: 8, MaxLabels: 4, MaxStringLen: 64}
	dec := transport.Decoder{Limits: lim}
	var seq uint64
	f.Fuzz(func(t *testing.T, plain []byte) {
		seq++
		env := &transport.Envelope{Version: 1, Tenant: "acme", Agent: "fuzz", Seq: seq, SentAt: now, Host: "h"}
		sealRaw(t, env, plain, now)
		err := o.Open(env, &dec)
		if err != nil {
			if !errors.Is(err, transport.ErrMalformed) && !errors.Is(err, transport.ErrTooLarge) {
				t.Fatalf("payload error wraps neither ErrMalformed nor ErrTooLarge: %v", err)
			}
			return
		}
		require.LessOrEqual(t, len(env.Measurements), lim.MaxMeasurements)
		for _, m := range env.Measurements {
			require.LessOrEqual(t, len(m.Labels), lim.MaxLabels)
			require.LessOrEqual(t, len(m.Name), lim.MaxStringLen)
		}
		// What opened encodes to a payload that opens to the same.
		again, err := transport.AppendMeasurements(nil, env.Measurements, env.Host)
		require.NoError(t, err)
		seq++
		env2 := &transport.Envelope{Version: 1, Tenant: "acme", Agent: "fuzz", Seq: seq, SentAt: now, Host: "h"}
		sealRaw(t, env2, again, now)
		var dec2 transport.Decoder
		require.NoError(t, o.Open(env2, &dec2))
		require.Equal(t, len(env.Measurements), len(env2.Measurements))
	})
}

// FuzzParseKeyFile: ParseKeyFile never panics, what it accepts passes
// Check and survives Marshal and ParseKeyFile again, and its errors never
// quote a key.
func FuzzParseKeyFile(f *testing.F) {
	for _, b := range seedKeyFiles(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := seal.ParseKeyFile(b)
		if err != nil {
			require.NotContains(t, err.Error(), "0123456789abcdef")
			return
		}
		require.NoError(t, kf.Check())
		out, err := kf.Marshal()
		require.NoError(t, err)
		again, err := seal.ParseKeyFile(out)
		require.NoError(t, err)
		require.Equal(t, kf.TenantIDs(), again.TenantIDs())
		for _, id := range kf.TenantIDs() {
			require.Len(t, again.Tenants[id].Keys, len(kf.Tenants[id].Keys))
			for i, k := range kf.Tenants[id].Keys {
				require.Equal(t, k.Secret, again.Tenants[id].Keys[i].Secret)
				require.True(t, k.Created.Equal(again.Tenants[id].Keys[i].Created))
			}
		}
		if _, err := seal.NewKeyring(kf); err != nil {
			t.Fatal(err)
		}
	})
}
