package seal

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/meterkit/meter/internal/option"
	"github.com/meterkit/meter/transport"
)

// Reasons an Opener refuses an envelope. Each error Open returns wraps
// exactly one of them (ErrUnknownKey also wraps ErrWrongKey), or, for a
// sealed payload that authenticates but does not decode, transport's
// ErrMalformed or ErrTooLarge.
var (
	// ErrUnsealed: the envelope is not sealed and the Opener requires it.
	ErrUnsealed = errors.New("seal: envelope not sealed")
	// ErrUnknownTenant: the KeyStore holds no key for the envelope's tenant.
	ErrUnknownTenant = errors.New("seal: unknown tenant")
	// ErrWrongKey: the envelope was sealed with a key the tenant does not
	// hold: an unknown key id, or a key whose check value differs (another
	// tenant's key, an old key under a reused id).
	ErrWrongKey = errors.New("seal: wrong key")
	// ErrUnknownKey: the tenant holds no key with the envelope's key id
	// (revoked, or never made). It wraps ErrWrongKey.
	ErrUnknownKey = fmt.Errorf("%w: key id not held by the tenant", ErrWrongKey)
	// ErrTampered: the envelope was changed after sealing (header, Auth or
	// sealed bytes), or its Auth field is malformed.
	ErrTampered = errors.New("seal: envelope tampered with")
	// ErrOutOfWindow: the time the envelope was sealed at is further from
	// the Opener's clock than its window (a replay, or a clock that is
	// wrong on either side).
	ErrOutOfWindow = errors.New("seal: sealed outside the replay window")
)

// DefaultWindow is how far the time an envelope was sealed at may be from
// the receiver's clock, either way. A captured envelope opens while the
// receiver's clock is within the window of its sealing time, a span of twice
// the window (see the package documentation, Replays).
const DefaultWindow = 180 * time.Second

// Opener checks and opens sealed envelopes with the keys of a KeyStore. It
// is safe for concurrent use.
type Opener struct {
	keys          KeyStore
	window        time.Duration
	now           func() time.Time
	allowUnsealed bool

	mu       sync.RWMutex
	prepared map[string]*prepared // by secret
	bufs     sync.Pool            // *[]byte for associated data and plaintext
}

// OpenerOption configures NewOpener. Options follow the package convention
// (see the root package's doc, Options): zero is the default, a negative
// duration is an error from NewOpener naming the option.
type OpenerOption func(*Opener) error

// WithWindow sets how far the sealing time of an envelope may be from the
// Opener's clock, either way (0: DefaultWindow).
// It bounds how long a captured envelope can be replayed, and must exceed
// the clock difference between agents and publisher plus the time one send
// may take. The receiver's de-duplication must remember what it accepted
// for at least twice d (publisher.WithDedupWindow's age).
func WithWindow(d time.Duration) OpenerOption {
	return func(o *Opener) error { return option.Set(&o.window, "WithWindow", d, DefaultWindow) }
}

// WithClock sets the clock the window is checked against (time.Now by
// default), for tests.
func WithClock(now func() time.Time) OpenerOption {
	return func(o *Opener) error {
		if now != nil {
			o.now = now
		}
		return nil
	}
}

// AllowUnsealed lets envelopes that are not sealed through, unchecked, for
// a migration from unsealed agents. By default Open refuses them
// (ErrUnsealed). Nothing authenticates their headers: anyone who can reach
// the receiver can write as any tenant and agent, and mark a seq as
// accepted in the publisher's de-duplication.
func AllowUnsealed() OpenerOption {
	return func(o *Opener) error { o.allowUnsealed = true; return nil }
}

// NewOpener returns an Opener that finds keys in keys. An option's error
// (a negative window) is returned, naming it.
func NewOpener(keys KeyStore, opts ...OpenerOption) (*Opener, error) {
	o := &Opener{
		keys:     keys,
		window:   DefaultWindow,
		now:      time.Now,
		prepared: map[string]*prepared{},
	}
	for _, opt := range opts {
		if opt != nil {
			if err := opt(o); err != nil {
				return nil, fmt.Errorf("seal: %w", err)
			}
		}
	}
	return o, nil
}

// Window returns the Opener's replay window.
func (o *Opener) Window() time.Duration { return o.window }

// Open checks env and opens it: on success env.Measurements holds the
// measurements decoded from env.Sealed, and env.Sealed and env.Auth are
// nil, so that env is the envelope its agent gave the Sealer. The decoded
// measurements share memory with dec, as after dec.DecodeMeasurements, and
// dec's Limits bound them. The bytes of env.Sealed are not changed.
//
// Open checks, in order: that env is sealed (ErrUnsealed, unless
// AllowUnsealed), that its Auth field is well-formed, that the tenant is
// known (ErrUnknownTenant) and holds the key id (ErrUnknownKey), that the
// key's check value matches (ErrWrongKey), that header, Auth and sealed
// bytes authenticate (ErrTampered), that the sealing time is within the
// window (ErrOutOfWindow), and that the payload decodes. It does not
// remember what it opened: a replay within the window opens again, and the
// receiver's de-duplication by (tenant, agent, seq) drops it (package
// publisher does). Errors name the tenant, agent, seq and key id, never
// key material; on error env holds no measurements.
func (o *Opener) Open(env *transport.Envelope, dec *transport.Decoder) error {
	if len(env.Sealed) == 0 {
		switch {
		case len(env.Auth) > 0:
			return o.fail(ErrTampered, env, "", "auth data without sealed data")
		case o.allowUnsealed:
			return nil
		}
		return o.fail(ErrUnsealed, env, "", "this receiver accepts sealed envelopes only")
	}
	if len(env.Measurements) > 0 {
		return o.fail(ErrTampered, env, "", fmt.Sprintf("%d measurements outside the sealed data", len(env.Measurements)))
	}
	a, err := parseAuth(env.Auth)
	if err != nil {
		return o.fail(ErrTampered, env, "", err.Error())
	}
	key, err := o.keys.Key(env.Tenant, a.keyID)
	if err != nil {
		switch {
		case errors.Is(err, ErrUnknownTenant):
			return o.fail(ErrUnknownTenant, env, a.keyID, "no keys for this tenant")
		case errors.Is(err, ErrUnknownKey):
			return o.fail(ErrUnknownKey, env, a.keyID, "")
		}
		return fmt.Errorf("seal: open seq %d of tenant %q, agent %q: key store: %w", env.Seq, env.Tenant, env.Agent, err)
	}
	p, err := o.prepare(key.Secret)
	if err != nil {
		return o.fail(ErrUnknownKey, env, a.keyID, "the key store's key is unusable")
	}
	if subtle.ConstantTimeCompare(p.check[:], a.check) != 1 {
		return o.fail(ErrWrongKey, env, a.keyID, "key check value differs: sealed with another key")
	}
	if len(env.Sealed) < TagSize {
		return o.fail(ErrTampered, env, a.keyID, "sealed data shorter than a tag")
	}

	bp := o.getBuf(len(env.Sealed) + aadSize(env))
	defer o.bufs.Put(bp)
	buf := AppendAAD((*bp)[:0], env)
	aadEnd := len(buf)
	plain, err := p.aead.Open(buf[aadEnd:aadEnd], a.nonce, env.Sealed, buf[:aadEnd])
	if err != nil {
		return o.fail(ErrTampered, env, a.keyID, "authentication failed")
	}
	*bp = buf[:0]

	now := o.now()
	if d := now.Sub(time.Unix(0, a.sealedAt)); d > o.window || d < -o.window {
		when := fmt.Sprintf("sealed %v ago", d.Round(time.Millisecond))
		if d < 0 {
			when = fmt.Sprintf("sealed %v in the future", -d.Round(time.Millisecond))
		}
		return o.fail(ErrOutOfWindow, env, a.keyID, when+" (window ±"+o.window.String()+"): a replay, or a clock is off")
	}
	if err := dec.DecodeMeasurements(plain, env); err != nil {
		env.Measurements = env.Measurements[:0]
		return fmt.Errorf("seal: open seq %d of tenant %q, agent %q: sealed payload: %w", env.Seq, env.Tenant, env.Agent, err)
	}
	env.Sealed, env.Auth = nil, nil
	return nil
}

func (o *Opener) fail(reason error, env *transport.Envelope, keyID, detail string) error {
	env.Measurements = env.Measurements[:0]
	var b strings.Builder
	fmt.Fprintf(&b, "seq %d of tenant %q, agent %q", env.Seq, env.Tenant, env.Agent)
	if keyID != "" {
		fmt.Fprintf(&b, ", key id %q", keyID)
	}
	if detail != "" {
		b.WriteString(": ")
		b.WriteString(detail)
	}
	return &openError{reason: reason, msg: b.String()}
}

// openError is an error of Open: the reason, then the envelope it is about.
type openError struct {
	reason error
	msg    string
}

func (e *openError) Error() string { return e.reason.Error() + ": " + e.msg }
func (e *openError) Unwrap() error { return e.reason }

// prepare returns the AEAD and check value of secret, made once per key.
func (o *Opener) prepare(secret []byte) (*prepared, error) {
	o.mu.RLock()
	p := o.prepared[string(secret)]
	o.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	p, err := prepare(secret)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	if len(o.prepared) >= 4096 { // keys revoked long ago: start over
		clear(o.prepared)
	}
	o.prepared[string(secret)] = p
	o.mu.Unlock()
	return p, nil
}

func (o *Opener) getBuf(need int) *[]byte {
	bp, _ := o.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	if cap(*bp) < need {
		*bp = make([]byte, 0, need)
	}
	return bp
}
