package transport

// FramePreferrer is implemented by a Sender that sends frames up to some
// size more cheaply than larger ones, as a transport that reuses its
// buffers only up to a size does: PreferredFrameSize is that size, the
// largest encoded envelope (AppendEnvelope) sent at the lower cost, in
// bytes. It is a preference, not a limit: a larger frame, up to
// MaxFrameSize (FrameLimiter), is still sent. Zero or less means no
// preference. The agent cuts its batches to it, so that a batch does not
// cost fresh buffers on each side. A wrapping Sender that changes the frame
// reports its own preference, as it does its limit.
type FramePreferrer interface {
	PreferredFrameSize() int
}
