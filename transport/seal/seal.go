package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/meterkit/meter/transport"
)

// Sizes of the sealing format, version 1.
const (
	// KeySize is the size of a tenant key in bytes (AES-256).
	KeySize = 32
	// NonceSize is the size of the random nonce of AES-GCM.
	NonceSize = 12
	// TagSize is the size of the AES-GCM authentication tag that follows
	// the ciphertext in Envelope.Sealed.
	TagSize = 16
	// CheckSize is the size of the key check value in Envelope.Auth.
	CheckSize = 16
	// MaxKeyIDLen is the longest key id, in bytes.
	MaxKeyIDLen = 64
)

// authV1 is the first byte of a version-1 Auth field: format 1,
// AES-256-GCM.
const authV1 = 1

// aadContext starts the associated data, so that it can never be mistaken
// for the associated data of another use of the same key.
const aadContext = "meterkit-seal-v1"

// checkLabel is the message whose HMAC-SHA256 under a key is that key's
// check value.
const checkLabel = "meterkit seal key check v1"

// Key is one tenant key.
type Key struct {
	// ID names the key within its tenant: 1 to 64 bytes of letters, digits,
	// '.', '_' and '-'. It travels in every sealed envelope.
	ID string `json:"id"`
	// Secret is the 256-bit key. It never travels and is never logged.
	Secret []byte `json:"key"`
	// Created is when the key was made; a Sealer chosen by SealerFor uses
	// the tenant's newest key.
	Created time.Time `json:"created"`
}

// String names the key without its secret, so that printing a Key never
// shows the secret.
func (k Key) String() string { return "key " + k.ID }

// GoString is String, for %#v.
func (k Key) GoString() string { return k.String() }

// NewKey returns a new random key with the given id, created now.
func NewKey(id string) (Key, error) {
	if err := checkKeyID(id); err != nil {
		return Key{}, err
	}
	k := Key{ID: id, Secret: make([]byte, KeySize), Created: time.Now().UTC().Truncate(time.Second)}
	if _, err := rand.Read(k.Secret); err != nil {
		return Key{}, fmt.Errorf("seal: new key: %w", err)
	}
	return k, nil
}

func checkKeyID(id string) error {
	if id == "" || len(id) > MaxKeyIDLen {
		return fmt.Errorf("seal: key id %q: want 1 to %d bytes", id, MaxKeyIDLen)
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("seal: key id %q: only letters, digits, '.', '_' and '-' are allowed", id)
		}
	}
	return nil
}

// prepared is a key made ready for use: its AEAD and check value.
type prepared struct {
	aead  cipher.AEAD
	check [CheckSize]byte
}

func prepare(secret []byte) (*prepared, error) {
	if len(secret) != KeySize {
		return nil, fmt.Errorf("seal: key of %d bytes, want %d", len(secret), KeySize)
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	p := &prepared{aead: aead}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(checkLabel))
	copy(p.check[:], mac.Sum(nil))
	return p, nil
}

// Sealer seals envelopes for one tenant with one key. It is safe for
// concurrent use.
type Sealer struct {
	tenant string
	keyID  string
	key    *prepared
}

// NewSealer returns a Sealer for tenant's envelopes that seals with key.
func NewSealer(tenant string, key Key) (*Sealer, error) {
	if tenant == "" {
		return nil, errors.New("seal: new sealer: empty tenant")
	}
	if err := checkKeyID(key.ID); err != nil {
		return nil, err
	}
	p, err := prepare(key.Secret)
	if err != nil {
		return nil, fmt.Errorf("seal: new sealer for tenant %q, key %q: %w", tenant, key.ID, err)
	}
	return &Sealer{tenant: tenant, keyID: key.ID, key: p}, nil
}

// Tenant returns the tenant the Sealer seals for.
func (s *Sealer) Tenant() string { return s.tenant }

// KeyID returns the id of the key the Sealer seals with.
func (s *Sealer) KeyID() string { return s.keyID }

// Seal is SealAt with the current time.
func (s *Sealer) Seal(buf []byte, env *transport.Envelope) (transport.Envelope, []byte, error) {
	return s.SealAt(buf, env, time.Now())
}

// SealAt returns the sealed form of env, sealed at time at: a copy of env's
// header (Version, Tenant, Agent, Seq, SentAt, Host) whose Measurements are
// encrypted into Sealed, with Auth set (key id, nonce, at, key check) and no
// Measurements. env is not changed. An empty env.Tenant becomes the
// Sealer's tenant; another tenant is an error.
//
// Sealed and Auth of the result are slices of buf, grown as needed and
// returned, so that a caller can reuse it for the next envelope once the
// result has been encoded. Each call draws a new random nonce.
//
// The receiver checks at against its clock (see WithWindow): seal when
// sending, not when batching, and seal again to send again.
func (s *Sealer) SealAt(buf []byte, env *transport.Envelope, at time.Time) (transport.Envelope, []byte, error) {
	out := *env
	out.Measurements = nil
	if out.Tenant == "" {
		out.Tenant = s.tenant
	} else if out.Tenant != s.tenant {
		return transport.Envelope{}, buf, fmt.Errorf("seal: seal seq %d: envelope of tenant %q, but the key is tenant %q's", env.Seq, env.Tenant, s.tenant)
	}
	if out.Version == 0 {
		out.Version = transport.Version
	}
	atNanos, ok := unixNanos(at)
	if !ok || atNanos == 0 {
		return transport.Envelope{}, buf, fmt.Errorf("seal: seal seq %d: time %v cannot be sent", env.Seq, at)
	}
	if _, ok := unixNanos(env.SentAt); !ok {
		return transport.Envelope{}, buf, fmt.Errorf("seal: seal seq %d: SentAt %v is outside the years 1678-2262", env.Seq, env.SentAt)
	}

	// buf holds, in order: Auth, the associated data, then the plaintext,
	// which is encrypted in place (the AEAD forbids dst to overlap the
	// associated data, and allows it to be exactly the plaintext).
	buf = buf[:0]
	buf = append(buf, authV1, byte(len(s.keyID)))
	buf = append(buf, s.keyID...)
	nonceOff := len(buf)
	buf = append(buf, make([]byte, NonceSize)...)
	if _, err := rand.Read(buf[nonceOff : nonceOff+NonceSize]); err != nil {
		return transport.Envelope{}, buf, fmt.Errorf("seal: seal seq %d: nonce: %w", env.Seq, err)
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(atNanos))
	buf = append(buf, s.key.check[:]...)
	authEnd := len(buf)
	out.Auth = buf[:authEnd:authEnd]
	buf = AppendAAD(buf, &out)
	aadEnd := len(buf)
	var err error
	buf, err = transport.AppendMeasurementsFor(buf, env.Measurements, env.Host, out.Version)
	if err != nil {
		return transport.Envelope{}, buf, fmt.Errorf("seal: seal seq %d: %w", env.Seq, err)
	}
	if cap(buf)-len(buf) < TagSize {
		// Grow now, so that the buffer does not move under Auth and the
		// associated data during Seal.
		buf = append(buf, make([]byte, TagSize)...)[:len(buf)]
	}
	plain := buf[aadEnd:]
	nonce := buf[nonceOff : nonceOff+NonceSize]
	ct := s.key.aead.Seal(plain[:0], nonce, plain, buf[authEnd:aadEnd])
	buf = buf[:aadEnd+len(ct)]
	out.Auth = buf[:authEnd:authEnd]
	out.Sealed = buf[aadEnd:len(buf):len(buf)]
	return out, buf, nil
}

// AppendAAD appends the associated data of env to dst: the canonical
// encoding of its header and its Auth field, which sealing authenticates
// without encrypting. envelope.proto documents the encoding for
// implementations in other languages:
//
//	"meterkit-seal-v1"            16 bytes of ASCII
//	version                       uint32, big-endian (0 is written as transport.Version)
//	len(tenant), tenant           uint32 big-endian length, then the bytes
//	len(agent), agent
//	seq                           uint64, big-endian
//	sent_at                       int64 nanoseconds since the Unix epoch, big-endian (0: no time)
//	len(host), host
//	len(auth), auth
//
// SentAt must be within the years 1678-2262 (an envelope outside cannot be
// encoded anyway).
func AppendAAD(dst []byte, env *transport.Envelope) []byte {
	v := env.Version
	if v == 0 {
		v = transport.Version
	}
	sentAt, _ := unixNanos(env.SentAt)
	dst = append(dst, aadContext...)
	dst = binary.BigEndian.AppendUint32(dst, v)
	dst = appendLP(dst, env.Tenant)
	dst = appendLP(dst, env.Agent)
	dst = binary.BigEndian.AppendUint64(dst, env.Seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(sentAt))
	dst = appendLP(dst, env.Host)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(env.Auth)))
	return append(dst, env.Auth...)
}

// aadSize is the length of what AppendAAD appends for env.
func aadSize(env *transport.Envelope) int {
	return len(aadContext) + 4 + 4 + len(env.Tenant) + 4 + len(env.Agent) + 8 + 8 + 4 + len(env.Host) + 4 + len(env.Auth)
}

func appendLP(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// unixNanos is t in nanoseconds since the epoch as the codec writes it: 0
// for the zero time; ok is false outside the range of int64 nanoseconds.
func unixNanos(t time.Time) (int64, bool) {
	if t.IsZero() {
		return 0, true
	}
	if t.Before(minTime) || t.After(maxTime) {
		return 0, false
	}
	return t.UnixNano(), true
}

// auth is a parsed Auth field.
type auth struct {
	keyID    string
	nonce    []byte
	sealedAt int64
	check    []byte
}

// parseAuth parses a version-1 Auth field. keyID aliases b.
func parseAuth(b []byte) (auth, error) {
	if len(b) < 2 {
		return auth{}, fmt.Errorf("auth of %d bytes is too short", len(b))
	}
	if b[0] != authV1 {
		return auth{}, fmt.Errorf("auth format %d unknown (want %d)", b[0], authV1)
	}
	n := int(b[1])
	if n == 0 || n > MaxKeyIDLen {
		return auth{}, fmt.Errorf("key id of %d bytes", n)
	}
	if want := 2 + n + NonceSize + 8 + CheckSize; len(b) != want {
		return auth{}, fmt.Errorf("auth of %d bytes, want %d for a key id of %d bytes", len(b), want, n)
	}
	a := auth{keyID: string(b[2 : 2+n])}
	off := 2 + n
	a.nonce = b[off : off+NonceSize]
	off += NonceSize
	a.sealedAt = int64(binary.BigEndian.Uint64(b[off:]))
	off += 8
	a.check = b[off : off+CheckSize]
	return a, nil
}
