package seal

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

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
	// ErrReplayed: an envelope with the same tenant, agent and seq was
	// opened and acknowledged StatusOK within the window. The receiver
	// answers StatusOK again and does not deliver it twice.
	ErrReplayed = errors.New("seal: envelope already acknowledged")
)

// Defaults of an Opener.
const (
	// DefaultWindow is how far the time an envelope was sealed at may be
	// from the receiver's clock, either way.
	DefaultWindow = 180 * time.Second
	// DefaultReplayMemory is how many acknowledged (tenant, agent, seq) an
	// Opener remembers at most, all agents together.
	DefaultReplayMemory = 1 << 20
	// DefaultReplayPerAgent is how many acknowledged seqs it remembers at
	// most for one agent.
	DefaultReplayPerAgent = 1024
)

// Opener checks and opens sealed envelopes with the keys of a KeyStore. It
// is safe for concurrent use.
type Opener struct {
	keys          KeyStore
	window        time.Duration
	now           func() time.Time
	allowUnsealed bool
	seen          *seenSet

	mu       sync.RWMutex
	prepared map[string]*prepared // by secret
	bufs     sync.Pool            // *[]byte for associated data and plaintext
}

// OpenerOption configures NewOpener.
type OpenerOption func(*Opener)

// WithWindow sets how far the sealing time of an envelope may be from the
// Opener's clock, either way (DefaultWindow when d is zero or negative).
// It bounds how long a captured envelope can be replayed, and must exceed
// the clock difference between agents and publisher plus the time one send
// may take.
func WithWindow(d time.Duration) OpenerOption {
	return func(o *Opener) {
		if d > 0 {
			o.window = d
		}
	}
}

// WithClock sets the clock the window is checked against (time.Now by
// default), for tests.
func WithClock(now func() time.Time) OpenerOption {
	return func(o *Opener) {
		if now != nil {
			o.now = now
		}
	}
}

// AllowUnsealed lets envelopes that are not sealed through, unchecked, for
// a migration from unsealed agents. By default Open refuses them
// (ErrUnsealed).
func AllowUnsealed() OpenerOption {
	return func(o *Opener) { o.allowUnsealed = true }
}

// WithReplayMemory bounds how many acknowledged envelopes the Opener
// remembers, in all (total) and per agent (perAgent); zero means the
// defaults. When memory is full, older envelopes are forgotten and a replay
// of them is delivered again, for the publisher's de-duplication to drop.
func WithReplayMemory(total, perAgent int) OpenerOption {
	return func(o *Opener) {
		if total > 0 {
			o.seen.maxTotal = total
		}
		if perAgent > 0 {
			o.seen.maxPerAgent = perAgent
		}
	}
}

// NewOpener returns an Opener that finds keys in keys.
func NewOpener(keys KeyStore, opts ...OpenerOption) *Opener {
	o := &Opener{
		keys:     keys,
		window:   DefaultWindow,
		now:      time.Now,
		seen:     &seenSet{agents: map[agentID]*agentSeen{}, maxTotal: DefaultReplayMemory, maxPerAgent: DefaultReplayPerAgent},
		prepared: map[string]*prepared{},
	}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// Window returns the Opener's replay window.
func (o *Opener) Window() time.Duration { return o.window }

// Open checks env and opens it: on success env.Measurements holds the
// measurements decoded from env.Sealed, env.Sealed is nil, and env.Auth
// still holds the authentication data (so a sealed envelope is told apart
// from an unsealed one let through by AllowUnsealed). The decoded
// measurements share memory with dec, as after dec.DecodeMeasurements, and
// dec's Limits bound them. env.Sealed itself is not changed.
//
// Open checks, in order: that env is sealed (ErrUnsealed, unless
// AllowUnsealed), that its Auth field is well-formed, that the tenant is
// known (ErrUnknownTenant) and holds the key id (ErrUnknownKey), that the
// key's check value matches (ErrWrongKey), that header, Auth and sealed
// bytes authenticate (ErrTampered), that the sealing time is within the
// window (ErrOutOfWindow), that no envelope with the same tenant, agent
// and seq was acknowledged within the window (ErrReplayed), and that the
// payload decodes. Errors name the tenant, agent, seq and key id, never
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
	if o.seen.acked(env.Tenant, env.Agent, env.Seq, now, 2*o.window) {
		return o.fail(ErrReplayed, env, a.keyID, "")
	}
	if err := dec.DecodeMeasurements(plain, env); err != nil {
		env.Measurements = env.Measurements[:0]
		return fmt.Errorf("seal: open seq %d of tenant %q, agent %q: sealed payload: %w", env.Seq, env.Tenant, env.Agent, err)
	}
	env.Sealed = nil
	return nil
}

// Acknowledged records that env, which Open opened, was answered
// StatusOK, so that Open refuses it as ErrReplayed within the window.
// Receivers call it before sending the answer. It ignores an envelope Open
// did not open (one without Auth, let through by AllowUnsealed), whose
// header nobody authenticated.
func (o *Opener) Acknowledged(env *transport.Envelope) {
	if len(env.Auth) == 0 || len(env.Sealed) != 0 {
		return
	}
	o.seen.add(env.Tenant, env.Agent, env.Seq, o.now(), 2*o.window)
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

// seenSet remembers acknowledged (tenant, agent, seq) for a while.
type seenSet struct {
	mu          sync.Mutex
	agents      map[agentID]*agentSeen
	total       int
	maxTotal    int
	maxPerAgent int
}

type agentID struct{ tenant, agent string }

// agentSeen is one agent's acknowledged seqs: when each was acknowledged,
// and their order, oldest first, for eviction.
type agentSeen struct {
	at    map[uint64]int64
	order []uint64
	last  int64
}

func (s *seenSet) acked(tenant, agent string, seq uint64, now time.Time, keep time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[agentID{tenant, agent}]
	if a == nil {
		return false
	}
	at, ok := a.at[seq]
	return ok && now.UnixNano()-at <= int64(keep)
}

func (s *seenSet) add(tenant, agent string, seq uint64, now time.Time, keep time.Duration) {
	t := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	id := agentID{tenant, agent}
	a := s.agents[id]
	if a == nil {
		if s.total >= s.maxTotal {
			s.sweep(t - int64(keep))
		}
		if s.total >= s.maxTotal {
			return // full of recent entries: the publisher's de-duplication remains
		}
		a = &agentSeen{at: map[uint64]int64{}}
		s.agents[agentID{strings.Clone(tenant), strings.Clone(agent)}] = a
	}
	a.last = t
	if _, ok := a.at[seq]; ok {
		a.at[seq] = t
		return
	}
	// Forget what is too old to replay, then the oldest beyond the bounds.
	for len(a.order) > 0 && (t-a.at[a.order[0]] > int64(keep) || len(a.order) >= s.maxPerAgent) {
		delete(a.at, a.order[0])
		a.order = a.order[1:]
		s.total--
	}
	if s.total >= s.maxTotal {
		s.sweep(t - int64(keep))
		if s.total >= s.maxTotal {
			return
		}
	}
	a.at[seq] = t
	a.order = append(a.order, seq)
	s.total++
}

// sweep forgets the agents not acknowledged since before.
func (s *seenSet) sweep(before int64) {
	for id, a := range s.agents {
		if a.last < before {
			s.total -= len(a.order)
			delete(s.agents, id)
		}
	}
}
