package seal_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/seal"
	"github.com/meterkit/meter/transport/transporttest"
)

// now is the fixed clock of these tests.
var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

func mustKey(t testing.TB, id string) seal.Key {
	t.Helper()
	k, err := seal.NewKey(id)
	require.NoError(t, err)
	return k
}

// fixture is a key file with tenants "acme" (keys k1, k2) and "globex" (k1).
type fixture struct {
	acme1, acme2, globex seal.Key
	kf                   *seal.KeyFile
	kr                   *seal.Keyring
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{acme1: mustKey(t, "k1"), acme2: mustKey(t, "k2"), globex: mustKey(t, "k1")}
	f.acme2.Created = f.acme1.Created.Add(time.Hour)
	f.kf = &seal.KeyFile{Tenants: map[string]*seal.TenantKeys{
		"acme":   {Keys: []seal.Key{f.acme1, f.acme2}},
		"globex": {Keys: []seal.Key{f.globex}},
	}}
	var err error
	f.kr, err = seal.NewKeyring(f.kf)
	require.NoError(t, err)
	return f
}

func mustSealer(t testing.TB, tenant string, k seal.Key) *seal.Sealer {
	t.Helper()
	s, err := seal.NewSealer(tenant, k)
	require.NoError(t, err)
	return s
}

func acmeEnvelope(seq uint64) *transport.Envelope {
	env := transporttest.Envelope(seq)
	env.Tenant = "acme"
	return env
}

// sealWire seals env at time at and sends the result through the codec, as
// a receiver would see it.
func sealWire(t testing.TB, s *seal.Sealer, env *transport.Envelope, at time.Time) *transport.Envelope {
	t.Helper()
	sealed, _, err := s.SealAt(nil, env, at)
	require.NoError(t, err)
	return wire(t, &sealed)
}

func wire(t testing.TB, env *transport.Envelope) *transport.Envelope {
	t.Helper()
	frame, err := transport.AppendEnvelope(nil, env)
	require.NoError(t, err)
	var d transport.Decoder
	var got transport.Envelope
	require.NoError(t, d.Decode(frame, &got))
	return &got
}

func requireMeasurements(t *testing.T, want []meter.Measurement, got []meter.Measurement) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		w, g := want[i], got[i]
		require.True(t, w.Time.Equal(g.Time), "Measurements[%d].Time", i)
		w.Time, g.Time = time.Time{}, time.Time{}
		if len(w.Labels) == 0 && len(g.Labels) == 0 {
			w.Labels, g.Labels = nil, nil
		}
		require.Equal(t, w, g, "Measurements[%d]", i)
	}
}

func TestSealOpen(t *testing.T) {
	f := newFixture(t)
	o := newOpener(t, f.kr, seal.WithClock(clock))
	env := acmeEnvelope(7)
	before := transporttest.Envelope(7)
	got := sealWire(t, mustSealer(t, "acme", f.acme2), env, now.Add(-time.Second))
	require.Empty(t, got.Measurements)
	require.NotEmpty(t, got.Sealed)
	require.Equal(t, env.SentAt.UnixNano(), got.SentAt.UnixNano(), "SentAt is the caller's")

	var d transport.Decoder
	require.NoError(t, o.Open(got, &d))
	require.Nil(t, got.Sealed)
	require.Nil(t, got.Auth, "an opened envelope is the one the agent gave")
	require.Equal(t, "acme", got.Tenant)
	require.Equal(t, env.Host, got.Host)
	requireMeasurements(t, env.Measurements, got.Measurements)
	requireMeasurements(t, before.Measurements, env.Measurements) // not changed by sealing
}

func TestSealFillsTenant(t *testing.T) {
	f := newFixture(t)
	s := mustSealer(t, "acme", f.acme1)
	env := transporttest.Envelope(1)
	env.Tenant = ""
	sealed, _, err := s.SealAt(nil, env, now)
	require.NoError(t, err)
	require.Equal(t, "acme", sealed.Tenant)
	require.Empty(t, env.Tenant)

	env.Tenant = "globex"
	_, _, err = s.SealAt(nil, env, now)
	require.ErrorContains(t, err, `tenant "globex"`)
}

func TestSealReusesBuffer(t *testing.T) {
	f := newFixture(t)
	s := mustSealer(t, "acme", f.acme1)
	env := acmeEnvelope(1)
	_, buf, err := s.SealAt(nil, env, now)
	require.NoError(t, err)
	a1 := testing.AllocsPerRun(20, func() {
		_, buf, err = s.SealAt(buf[:0], env, now)
	})
	require.NoError(t, err)
	require.Zero(t, a1)
}

func TestNoncesDiffer(t *testing.T) {
	f := newFixture(t)
	s := mustSealer(t, "acme", f.acme1)
	a, _, err := s.SealAt(nil, acmeEnvelope(1), now)
	require.NoError(t, err)
	b, _, err := s.SealAt(nil, acmeEnvelope(1), now)
	require.NoError(t, err)
	require.NotEqual(t, a.Auth, b.Auth)
	require.NotEqual(t, a.Sealed, b.Sealed)
}

// TestRefusals: every reason an Opener refuses an envelope, each with its
// own error.
func TestRefusals(t *testing.T) {
	f := newFixture(t)
	acme := mustSealer(t, "acme", f.acme1)
	wrongSecret := f.acme1
	wrongSecret.Secret = bytes.Repeat([]byte{7}, seal.KeySize)
	for _, tc := range []struct {
		name string
		env  func(t *testing.T) *transport.Envelope
		want error
	}{
		{"unsealed", func(t *testing.T) *transport.Envelope { return wire(t, acmeEnvelope(1)) }, seal.ErrUnsealed},
		{"auth without sealed", func(t *testing.T) *transport.Envelope {
			env := sealWire(t, acme, acmeEnvelope(1), now)
			env.Sealed = nil
			return env
		}, seal.ErrTampered},
		{"plaintext beside sealed", func(t *testing.T) *transport.Envelope {
			env := sealWire(t, acme, acmeEnvelope(1), now)
			env.Measurements = acmeEnvelope(1).Measurements[:1]
			return env
		}, seal.ErrTampered},
		{"unknown tenant", func(t *testing.T) *transport.Envelope {
			env := acmeEnvelope(1)
			env.Tenant = "initech"
			return sealWire(t, mustSealer(t, "initech", mustKey(t, "k1")), env, now)
		}, seal.ErrUnknownTenant},
		{"wrong key, same id", func(t *testing.T) *transport.Envelope {
			return sealWire(t, mustSealer(t, "acme", wrongSecret), acmeEnvelope(1), now)
		}, seal.ErrWrongKey},
		{"unknown key id", func(t *testing.T) *transport.Envelope {
			return sealWire(t, mustSealer(t, "acme", mustKey(t, "k9")), acmeEnvelope(1), now)
		}, seal.ErrUnknownKey},
		{"another tenant's key", func(t *testing.T) *transport.Envelope {
			// The header says acme, the key is globex's (same id k1).
			return sealWire(t, mustSealer(t, "acme", f.globex), acmeEnvelope(1), now)
		}, seal.ErrWrongKey},
		{"tenant rewritten", func(t *testing.T) *transport.Envelope {
			// Sealed by globex, then the header changed to acme's name.
			env := acmeEnvelope(1)
			env.Tenant = "globex"
			got := sealWire(t, mustSealer(t, "globex", f.globex), env, now)
			got.Tenant = "acme"
			return got
		}, seal.ErrWrongKey},
		{"too old", func(t *testing.T) *transport.Envelope {
			return sealWire(t, acme, acmeEnvelope(1), now.Add(-seal.DefaultWindow-time.Second))
		}, seal.ErrOutOfWindow},
		{"from the future", func(t *testing.T) *transport.Envelope {
			return sealWire(t, acme, acmeEnvelope(1), now.Add(seal.DefaultWindow+time.Second))
		}, seal.ErrOutOfWindow},
		{"short auth", func(t *testing.T) *transport.Envelope {
			env := sealWire(t, acme, acmeEnvelope(1), now)
			env.Auth = env.Auth[:len(env.Auth)-1]
			return env
		}, seal.ErrTampered},
		{"short sealed", func(t *testing.T) *transport.Envelope {
			env := sealWire(t, acme, acmeEnvelope(1), now)
			env.Sealed = env.Sealed[:seal.TagSize-1]
			return env
		}, seal.ErrTampered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOpener(t, f.kr, seal.WithClock(clock))
			env := tc.env(t)
			var d transport.Decoder
			err := o.Open(env, &d)
			require.ErrorIs(t, err, tc.want)
			require.Empty(t, env.Measurements)
			requireNoSecret(t, f, err.Error())
			require.Contains(t, err.Error(), `agent "agent-7"`)
		})
	}
}

func requireNoSecret(t *testing.T, f *fixture, s string) {
	t.Helper()
	for _, k := range []seal.Key{f.acme1, f.acme2, f.globex} {
		require.NotContains(t, s, string(k.Secret))
		require.NotContains(t, s, fmt.Sprintf("%x", k.Secret))
		b, _ := (&seal.KeyFile{Tenants: map[string]*seal.TenantKeys{"x": {Keys: []seal.Key{k}}}}).Marshal()
		i := bytes.Index(b, []byte(`"key": "`))
		require.Positive(t, i)
		require.NotContains(t, s, string(b[i+8:i+8+43]))
	}
}

// TestTamperEveryByte flips each byte of a sealed frame: every flip is
// refused or, in bytes the seal does not cover (tags, lengths of the
// protobuf framing), fails to decode; none opens to different data.
func TestTamperEveryByte(t *testing.T) {
	f := newFixture(t)
	o := newOpener(t, f.kr, seal.WithClock(clock))
	env := acmeEnvelope(3)
	env.Measurements = env.Measurements[:2]
	sealed, _, err := mustSealer(t, "acme", f.acme1).SealAt(nil, env, now)
	require.NoError(t, err)
	frame, err := transport.AppendEnvelope(nil, &sealed)
	require.NoError(t, err)
	var d transport.Decoder
	var got transport.Envelope
	for i := range frame {
		b := bytes.Clone(frame)
		b[i] ^= 0x01
		if d.Decode(b, &got) != nil {
			continue
		}
		err := o.Open(&got, &d)
		require.Error(t, err, "byte %d flipped, still opens", i)
	}
	require.NoError(t, d.Decode(frame, &got))
	require.NoError(t, o.Open(&got, &d))
}

// TestReplay: the Opener checks the window only and remembers nothing: a
// replay within the window opens again (the publisher's de-duplication
// drops it), one outside is refused.
func TestReplay(t *testing.T) {
	f := newFixture(t)
	at := now
	o := newOpener(t, f.kr, seal.WithClock(func() time.Time { return at }), seal.WithWindow(time.Minute))
	s := mustSealer(t, "acme", f.acme1)
	var d transport.Decoder
	sealed, _, err := s.SealAt(nil, acmeEnvelope(1), now)
	require.NoError(t, err)
	frame, err := transport.AppendEnvelope(nil, &sealed)
	require.NoError(t, err)
	open := func() error {
		var env transport.Envelope
		require.NoError(t, d.Decode(frame, &env))
		return o.Open(&env, &d)
	}
	require.NoError(t, open())
	require.NoError(t, open(), "a replay within the window opens")
	at = now.Add(time.Minute)
	require.NoError(t, open(), "at the edge of the window")
	at = now.Add(time.Minute + time.Millisecond)
	require.ErrorIs(t, open(), seal.ErrOutOfWindow)
	at = now.Add(-time.Minute - time.Millisecond)
	require.ErrorIs(t, open(), seal.ErrOutOfWindow, "sealed too far ahead of the receiver's clock")
}

func TestRotation(t *testing.T) {
	f := newFixture(t)
	var d transport.Decoder
	o := newOpener(t, f.kr, seal.WithClock(clock))
	// Both keys of acme open while agents move over.
	for i, k := range []seal.Key{f.acme1, f.acme2} {
		env := sealWire(t, mustSealer(t, "acme", k), acmeEnvelope(uint64(i+1)), now)
		require.NoError(t, o.Open(env, &d), k.ID)
	}
	// An agent provisioned now gets the newest key.
	newest, err := f.kf.Newest("acme")
	require.NoError(t, err)
	require.Equal(t, "k2", newest.ID)

	// Revoke k1 in the file; after Reload, k1 is refused and k2 still opens.
	path := filepath.Join(t.TempDir(), "keys.json")
	require.NoError(t, seal.SaveKeyFile(path, f.kf))
	kr, err := seal.OpenKeyring(path)
	require.NoError(t, err)
	o = newOpener(t, kr, seal.WithClock(clock))
	require.NoError(t, o.Open(sealWire(t, mustSealer(t, "acme", f.acme1), acmeEnvelope(3), now), &d))
	f.kf.Tenants["acme"].Keys = f.kf.Tenants["acme"].Keys[1:]
	require.NoError(t, seal.SaveKeyFile(path, f.kf))
	require.NoError(t, kr.Reload())
	require.ErrorIs(t, o.Open(sealWire(t, mustSealer(t, "acme", f.acme1), acmeEnvelope(4), now), &d), seal.ErrUnknownKey)
	require.NoError(t, o.Open(sealWire(t, mustSealer(t, "acme", f.acme2), acmeEnvelope(5), now), &d))
}

func TestAllowUnsealed(t *testing.T) {
	f := newFixture(t)
	o := newOpener(t, f.kr, seal.AllowUnsealed())
	env := wire(t, acmeEnvelope(1))
	var d transport.Decoder
	require.NoError(t, o.Open(env, &d))
	requireMeasurements(t, acmeEnvelope(1).Measurements, env.Measurements)
}

// TestLimitsInsideSealed: the decoder's limits apply to the sealed
// payload: a key holder cannot send more than a plain agent could.
func TestLimitsInsideSealed(t *testing.T) {
	f := newFixture(t)
	o := newOpener(t, f.kr, seal.WithClock(clock))
	s := mustSealer(t, "acme", f.acme1)
	for _, tc := range []struct {
		name string
		lim  transport.Limits
	}{
		{"measurements", transport.Limits{MaxMeasurements: 5}},
		{"labels", transport.Limits{MaxLabels: 2}},
		{"string", transport.Limits{MaxStringLen: 10}},
		{"size", transport.Limits{MaxFrameSize: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := transport.Decoder{Limits: tc.lim}
			err := o.Open(sealWire(t, s, acmeEnvelope(1), now), &d)
			require.ErrorIs(t, err, transport.ErrTooLarge)
		})
	}
}

func TestKeyFileParse(t *testing.T) {
	f := newFixture(t)
	good, err := f.kf.Marshal()
	require.NoError(t, err)
	kf, err := seal.ParseKeyFile(good)
	require.NoError(t, err)
	require.Equal(t, []string{"acme", "globex"}, kf.TenantIDs())
	require.Equal(t, f.acme2.Secret, kf.Tenants["acme"].Keys[1].Secret)

	key := `"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`
	for _, tc := range []struct{ name, json, want string }{
		{"empty", ``, "truncated"},
		{"not json", `{"tenants":`, "truncated"},
		{"syntax", `{"tenants":{"a" 1}}`, "syntax error"},
		{"unknown field", `{"tenant":{}}`, "unknown field"},
		{"trailing", `{"tenants":{}} {}`, "after the JSON"},
		{"empty tenant", `{"tenants":{"":{"keys":[]}}}`, "tenant id"},
		{"null tenant", `{"tenants":{"a":null}}`, "null"},
		{"short key", `{"tenants":{"a":{"keys":[{"id":"k1","key":"AAAA"}]}}}`, "3 bytes, want 32"},
		{"bad base64", `{"tenants":{"a":{"keys":[{"id":"k1","key":"!!!!"}]}}}`, "base64"},
		{"bad id", `{"tenants":{"a":{"keys":[{"id":"k 1","key":` + key + `}]}}}`, "key id"},
		{"repeated id", `{"tenants":{"a":{"keys":[{"id":"k1","key":` + key + `},{"id":"k1","key":` + key + `}]}}}`, "twice"},
		{"three keys", `{"tenants":{"a":{"keys":[{"id":"k1","key":` + key + `},{"id":"k2","key":` + key + `},{"id":"k3","key":` + key + `}]}}}`, "at most 2"},
		{"wrong type", `{"tenants":{"a":{"keys":[{"id":1}]}}}`, "wrong type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := seal.ParseKeyFile([]byte(tc.json))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestKeyFilePermissions(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "keys.json")
	require.NoError(t, seal.SaveKeyFile(path, f.kf))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = seal.LoadKeyFile(path)
	require.NoError(t, err)

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		require.NoError(t, os.Chmod(path, mode))
		_, err = seal.LoadKeyFile(path)
		require.ErrorIs(t, err, seal.ErrKeyFileMode)
		require.ErrorContains(t, err, fmt.Sprintf("mode %04o", mode))
		require.ErrorContains(t, err, "chmod 600 "+path)
		_, err = seal.OpenKeyring(path)
		require.ErrorIs(t, err, seal.ErrKeyFileMode)
		_, err = seal.SealerFor(path, "acme")
		require.ErrorIs(t, err, seal.ErrKeyFileMode)
	}
	require.NoError(t, os.Chmod(path, 0o400))
	s, err := seal.SealerFor(path, "acme")
	require.NoError(t, err)
	require.Equal(t, "k2", s.KeyID())

	_, err = seal.LoadKeyFile(filepath.Dir(path))
	require.ErrorContains(t, err, "not a regular file")
}

func TestKeyNeverPrinted(t *testing.T) {
	f := newFixture(t)
	for _, s := range []string{fmt.Sprint(f.acme1), fmt.Sprintf("%v %+v %#v %s", f.acme1, f.acme1, f.acme1, f.acme1)} {
		requireNoSecret(t, f, s)
		require.True(t, strings.Contains(s, "k1"))
	}
}

func TestExport(t *testing.T) {
	f := newFixture(t)
	ex, err := f.kf.Export("acme", "")
	require.NoError(t, err)
	require.Equal(t, []string{"acme"}, ex.TenantIDs())
	require.Len(t, ex.Tenants["acme"].Keys, 1)
	require.Equal(t, "k2", ex.Tenants["acme"].Keys[0].ID)
	ex, err = f.kf.Export("acme", "k1")
	require.NoError(t, err)
	require.Equal(t, f.acme1.Secret, ex.Tenants["acme"].Keys[0].Secret)
	_, err = f.kf.Export("acme", "k7")
	require.ErrorIs(t, err, seal.ErrUnknownKey)
	_, err = f.kf.Export("nobody", "")
	require.ErrorIs(t, err, seal.ErrUnknownTenant)
}

// A negative window is an error naming the option; zero is the default.
func TestOpenerOptionConvention(t *testing.T) {
	_, err := seal.NewOpener(nil, seal.WithWindow(-time.Second))
	require.EqualError(t, err, "seal: WithWindow: negative duration -1s")
	o, err := seal.NewOpener(nil, seal.WithWindow(0))
	require.NoError(t, err)
	require.Equal(t, seal.DefaultWindow, o.Window())
}
