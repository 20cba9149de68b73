// Package seal encrypts and authenticates envelopes with per-tenant keys,
// and checks them on arrival: an agent holds its tenant's 256-bit key and
// seals every batch; the publisher finds the key by tenant, refuses what
// does not open, and refuses or absorbs replays.
//
// Most programs use it through the transport: an agent passes
// nanomsg.WithSealer(s) to nanomsg.Dial, a publisher
// nanomsg.WithOpener(o) to nanomsg.Listen, and the reference binaries take
// -tenant/-key-file and -keys flags. examples/meterctl manages key files.
//
//	s, err := seal.SealerFor("/etc/meterkit/agent.key", "acme")      // agent
//	kr, err := seal.OpenKeyring("/etc/meterkit/keys.json")           // publisher
//	o := seal.NewOpener(kr)
//
// # Sealing
//
// A Sealer encodes the envelope's measurements (transport.AppendMeasurements,
// the same bytes as the measurements fields of an envelope) and encrypts
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
// Two checks, on authenticated data only:
//
//   - The window. sealed_at must be within the Opener's window (WithWindow,
//     default 180 s) of the publisher's clock, either way; otherwise
//     ErrOutOfWindow, which a nanomsg Receiver answers StatusRetry. The
//     Sender seals at every send attempt, so sealed_at is the time of the
//     attempt, not of the batch (Envelope.SentAt keeps that, and is
//     authenticated too): a batch spooled through a long outage is sealed
//     afresh when it goes out and is not refused. An envelope refused
//     because a clock is off is kept by its agent and sent again, sealed
//     again, until the clock is fixed: nothing is lost, and the
//     publisher's log says how far off the clock was.
//   - The acknowledged seqs. The Opener remembers, for twice the window,
//     each (tenant, agent, seq) a receiver acknowledged StatusOK
//     (Acknowledged). The same seq again is ErrReplayed, which a Receiver
//     answers StatusOK without handing the envelope out: an attacker who
//     replays a captured frame achieves nothing, and an agent that resends
//     after a lost ack gets the ack it missed. A seq seen but not
//     acknowledged OK (still in flight, or answered retry) is opened again:
//     that is an agent's legitimate resend, and refusing it would lose the
//     batch. A replay of it reaches the publisher, whose de-duplication by
//     (tenant, agent, seq) drops it. The memory is bounded
//     (WithReplayMemory); what it forgets is likewise left to that
//     de-duplication.
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
//     it is not delivered twice (see above);
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
//   - replays within the window of envelopes not yet acknowledged, beyond
//     what the publisher's de-duplication drops;
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
