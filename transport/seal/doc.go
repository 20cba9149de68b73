// Package seal encrypts and authenticates envelopes with per-tenant keys,
// and checks them on arrival: an agent holds its tenant's 256-bit key and
// seals every batch; the publisher finds the key by tenant, refuses what
// does not open, and refuses replays outside a window of time.
//
// Sealing wraps any transport: an agent wraps its transport.Sender with
// NewSender, a publisher its transport.Receiver with NewReceiver, and the
// reference binaries take -tenant/-key-file and -keys flags.
// examples/meterctl manages key files.
//
//	sl, err := seal.SealerFor("/etc/meterkit/agent.key", "acme")         // agent
//	ns, err := nanomsg.Dial([]string{"tcp://pub-1:7878"})
//	s := seal.NewSender(ns, sl)
//
//	kr, err := seal.OpenKeyring("/etc/meterkit/keys.json")              // publisher
//	nr, err := nanomsg.Listen("tcp://0.0.0.0:7878")
//	o, err := seal.NewOpener(kr)
//	r := seal.NewReceiver(nr, o)
//
// The Receiver answers what it refuses itself, counts it by reason
// (Receiver.Stats) and logs it; what it hands out is the envelope the agent
// sent. The inner transport's own counters and state stay reachable through
// transport.As (the wrappers have Unwrap methods); the Sender's frame limit
// is its own: the inner limit less the sealing overhead.
//
// # Sealing
//
// A Sealer encodes the envelope's measurements
// (transport.AppendMeasurementsFor, in the envelope's version: the same
// bytes as the measurements fields of an envelope) and encrypts
// them with AES-256-GCM (crypto/aes and crypto/cipher) into
// Envelope.Sealed; Measurements are left empty. The header stays readable,
// so a publisher can route and de-duplicate without the key, and is
// authenticated as associated data together with the Auth field:
//
//	Auth = 0x01 (format 1, AES-256-GCM)
//	       len(key id) (1 byte, 1-64), key id
//	       nonce (12 random bytes, new for every seal)
//	       sealed_at (int64 nanoseconds since the Unix epoch, big-endian)
//	       key check (16 bytes: HMAC-SHA256(key, "meterkit seal key check v1"), truncated)
//
//	AAD  = "meterkit-seal-v1", version (uint32), tenant, agent, seq (uint64),
//	       sent_at (int64 ns), host, Auth; integers big-endian, each string
//	       and Auth preceded by its length as a uint32 (see AppendAAD)
//
// envelope.proto documents the same for agents in other languages. The key
// check value tells a wrong key (ErrWrongKey) apart from tampered bytes
// (ErrTampered), which AES-GCM alone cannot, and binds the envelope to one
// key. Random 96-bit nonces are safe for about 2^32 envelopes per key;
// rotate keys long before that (one envelope every second is 136 years).
//
// # Replays
//
// The Opener checks authenticated data only, and remembers nothing:
//
//   - The window. sealed_at must be within the Opener's window (WithWindow,
//     default 180 s) of the publisher's clock, either way; otherwise
//     ErrOutOfWindow, which the Receiver answers StatusRetry. The
//     Sender seals at every send attempt, so sealed_at is the time of the
//     attempt, not of the batch (Envelope.SentAt keeps that, and is
//     authenticated too): a batch spooled through a long outage is sealed
//     afresh when it goes out and is not refused. An envelope refused
//     because a clock is off is kept by its agent and sent again, sealed
//     again, until the clock is fixed: nothing is lost, and the
//     publisher's log says how far off the clock was.
//   - Within the window, a replay authenticates and is handed out again.
//     What was accepted is remembered in one place, the publisher's
//     de-duplication by (tenant, agent, seq), which answers a batch it
//     accepted before StatusOK again without writing it twice, and which
//     survives a restart with the publisher's spool. A frame sealed at t
//     opens while the publisher's clock is within t±window, so that memory
//     must cover twice the window: package publisher's default does (see
//     publisher.WithDedupWindow). Since only authenticated headers reach
//     it, a forged header cannot mark a real batch as accepted already
//     (unless AllowUnsealed lets unsealed envelopes through: their headers
//     are nobody's word).
//
// # Threat model
//
// Sealing protects, between an agent and a publisher, even through relays
// and spools, against:
//
//   - reading measurements without the tenant's key (they are encrypted; the
//     header — tenant, agent, seq, times, default host — is not);
//   - changing any byte of header, Auth or payload (ErrTampered);
//   - writing into a tenant without its key, in particular with another
//     tenant's key under the first tenant's name: the key is looked up by
//     the tenant named in the header, and the header is authenticated
//     (ErrWrongKey, ErrUnknownKey);
//   - replaying a captured envelope: outside the window it is refused, inside
//     it reaches the publisher's de-duplication, which does not write it
//     twice (see above);
//   - using a revoked key (ErrUnknownKey once the publisher reloaded its
//     keys).
//
// It does not protect against:
//
//   - a holder of the tenant's key: every agent of a tenant shares the key,
//     so one compromised agent can write as any agent of its tenant, with
//     any seq, and can read what the tenant's other agents send if it
//     captures it;
//   - a compromised publisher or key file: the publisher holds every key;
//   - traffic analysis: sizes, times, tenant and agent names are visible
//     (use tls+tcp as well to hide them and to authenticate the publisher);
//   - suppression or delay: an attacker on the path can drop envelopes (the
//     agent resends) or hold them back up to the window;
//   - replays within the window to a receiver that does not de-duplicate
//     (package publisher does);
//   - a wrong clock on the publisher, which makes it refuse everything
//     (agents keep their batches) or widens what it accepts;
//   - floods: refused envelopes cost a decode and a decryption each, and
//     each is logged.
//
// # Key files
//
// One JSON format for the publisher's file (every tenant) and an agent's
// (its tenant, usually one key), parsed by ParseKeyFile:
//
//	{"tenants": {"acme": {"keys": [
//	    {"id": "k1", "key": "<32 bytes, standard base64>", "created": "2026-11-21T10:00:00Z"},
//	    {"id": "k2", "key": "...", "created": "2027-05-01T09:00:00Z"}]}}}
//
// A tenant holds at most two keys (MaxKeysPerTenant). LoadKeyFile, and
// everything that reads a key file, refuses a file whose mode lets group or
// others read or write it, naming the mode and the chmod that fixes it;
// SaveKeyFile writes with mode 0600. Keys are never printed: Key's String
// shows the id, and errors name tenant, agent and key id only.
//
// # Rotating a key
//
//  1. meterctl key rotate -tenant acme adds key k2 beside k1 in the
//     publisher's file; restart the publisher, or call Keyring.Reload. Both
//     keys now open.
//  2. meterctl key export -tenant acme writes an agent key file with the
//     newest key (k2); install it on each agent and restart the agent
//     (SealerFor picks the tenant's newest key).
//  3. When every agent sends with k2, meterctl key revoke -tenant acme -id k1,
//     and reload the publisher: envelopes sealed with k1 are refused
//     (ErrUnknownKey).
//
// To revoke a leaked key at once, skip to step 3 after step 1: agents still
// on the old key are refused until they have the new one, and their batches
// are dropped as rejected.
package seal
