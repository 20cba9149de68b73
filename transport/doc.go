// Package transport moves batches of measurements from an agent to a
// publisher and brings back the publisher's verdict. It defines the
// contracts every transport implements (Sender, Receiver, Delivery), the
// Envelope that carries a batch, its wire encoding, and the Ack that
// answers it. Implementations live in subpackages (transport/nanomsg);
// agent and publisher use them, and most programs never call this package
// directly.
//
// # The envelope
//
// An Envelope is one batch: who sends it (Tenant, Agent), its sequence
// number (Seq, one more for each new batch of an agent, unchanged when the
// batch is sent again), when it was first sent (SentAt), a default Host, and
// the measurements, or in their place Sealed and Auth for an encrypted batch.
//
// On the wire an envelope is the protobuf message meterkit.transport.v1.Envelope
// defined in envelope.proto, which documents every field for authors of
// agents in other languages. This package encodes it with AppendEnvelope and
// decodes it with a Decoder, a hand-written codec that produces and accepts
// the same bytes as code generated from envelope.proto, without allocating
// per measurement. A measurement whose Host equals the envelope's Host is
// sent without one. A Decoder checks its Limits (frame size, measurements
// per envelope, labels per measurement, string length) before allocating
// anything a frame asks for; it skips fields it does not know, so newer
// agents can add fields, and rejects an envelope whose Version is newer
// than MaxVersion.
//
// # Versions
//
// Version 1 is what every receiver reads. Version 2 (MaxVersion) adds one
// field: a measurement's last label, when it is meterkit.state with a
// level's name (the levels stage writes it on every measurement it
// checks), goes in two bytes instead of about 22, which makes a host's
// batch about a quarter smaller. AppendEnvelope writes it for an Envelope
// whose Version is 2; Decode reads it back as the same label in the same
// place. Receivers of an earlier release reject version 2, so a sender
// writes it only to a receiver that says it reads it: every Ack names the
// newest version its receiver reads (Ack.Version; the nanomsg Receiver
// writes MaxVersion), and a Sender that reads acks reports the latest
// (PeerVersioner). The agent writes version 2 once the publisher said so,
// and a batch of version 2 that a publisher rejects (one of an earlier
// release took its address) is sent again as version 1. Spools keep
// version 1, so that their files stay readable by an earlier release.
//
// # Frames sent as they are
//
// A spool keeps each envelope in its wire encoding. A Sender that can put
// such a frame on the wire without decoding it implements RawSender
// (transport/nanomsg's does). The capability changes what reaches the wire,
// so it is taken from the Sender itself, never through Unwrap: a wrapper
// that changes the envelope, such as sealing (done at each attempt, since
// the receiver checks when it was sealed), does not offer it, and the frame
// is decoded and given to Send.
//
// # The ack contract
//
// Every envelope gets exactly one Ack, encoded with AppendAck and decoded
// with DecodeAck (the message meterkit.transport.v1.Ack):
//
//   - StatusOK: the publisher took responsibility for the batch (every sink
//     accepted it, or the publisher spooled it). Only now may the agent
//     delete the batch from its spool.
//   - StatusRetry: not now (a store is down, the publisher is stopping). The
//     agent keeps the batch and sends it again later with the same Seq.
//   - StatusRejected: never (a frame that does not decode, a limit exceeded,
//     a wrong key). The agent drops the batch and reports it, unless the
//     Ack's Reason says otherwise.
//
// An Ack that is not StatusOK may carry a Reason (added after the first
// release, in a field a peer of that release skips, so that it acts on the
// Status as before): ReasonTooLarge, with the receiver's frame Limit, has
// the agent split the batch and send the parts; ReasonRefused says the
// receiver's configuration refuses the sender (unknown tenant, wrong key,
// sealing required or not accepted), so the agent keeps its batches, backs
// off and reports it; ReasonBadBatch says the batch itself is at fault. A
// Sender returns such an answer as a *ReplyError, which errors.Is matches
// with ErrRetry or ErrRejected, and ErrTooLarge or ErrRefused.
//
// # Errors say what to do
//
// A Sender marks with Permanent the errors that sending the same envelope
// again cannot fix, its own verdicts: a frame over its own limit (also
// ErrTooLarge), an envelope that does not encode, one a wrapper cannot seal.
// IsPermanent finds the mark. Answers of the receiver (*ReplyError), ctx's
// errors, lost connections and ErrClosed are not permanent.
//
// A Sender may report its frame limit (FrameLimiter); the agent cuts its
// batches so that each encoded envelope fits, counting each measurement's
// encoded size with MeasurementSize. A Sender may also report a smaller
// frame size it sends more cheaply (FramePreferrer), which the agent cuts
// its batches to as well.
//
// Delivery is at least once: an ack can be lost and the batch sent again,
// so a publisher drops an envelope whose (Tenant, Agent, Seq) it has already
// acknowledged. A Receiver answers StatusRejected itself for frames that do
// not decode; they never reach the caller.
//
// # Regenerating the protobuf code
//
// The package internal/wirepb holds Go code generated from envelope.proto.
// Only tests use it, to check that the hand-written codec and protobuf agree
// byte for byte. After editing envelope.proto, regenerate it from the
// module root with protoc and protoc-gen-go v1.36.12 on PATH:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go generate ./transport
//
// and change the codec (codec.go, decode.go) to match.
package transport
