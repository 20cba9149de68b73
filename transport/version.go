package transport

// PeerVersioner is implemented by a Sender that learns from the acks it
// reads the newest envelope version its receiver reads (Ack.Version).
// PeerVersion returns it as of the latest ack: Version before any ack, and
// after an ack from a receiver that does not say (one of an earlier
// release). A sender of envelopes (the agent) writes envelopes of at most
// that version, and when a receiver rejects a newer envelope, it sends the
// same batch again as Version (the receiver behind the address may have
// changed since the envelope was written).
//
// It is a read-only capability: a wrapper that passes envelopes on, such as
// sealing, lets it be found through Unwrap (As).
type PeerVersioner interface {
	PeerVersion() uint32
}
