// Package nanomsg carries meterkit envelopes over the scalability protocols
// of nanomsg (REQ/REP), using mangos (go.nanomsg.org/mangos/v3), a pure Go
// implementation that speaks the same wire protocol as libnanomsg and NNG.
//
// An agent Dials one or more publishers and gets a *Sender; a publisher
// Listens and gets a *Receiver. They implement transport.Sender and
// transport.Receiver: each envelope is one request, and its reply is the
// transport.Ack the publisher gave the Delivery.
//
//	r, err := nanomsg.Listen("tcp://0.0.0.0:7878")
//	s, err := nanomsg.Dial([]string{"tcp://pub-1:7878", "tcp://pub-2:7878"})
//
// # Addresses
//
// tcp://host:port, tls+tcp://host:port (with WithTLS), ipc:///path/to/socket
// and inproc://name (within one process). Listen accepts port 0 and
// Receiver.Addr reports the port it got.
//
// # Delivery
//
// Delivery is at least once. A Sender connects in the background and keeps
// reconnecting (WithReconnect), so Dial succeeds before any publisher is up
// and a Send waits until one is, or until its ctx ends. A request that gets
// no answer is sent again every resend interval (WithResendInterval, 10 s by
// default) and at once when the connection carrying it breaks, to whichever
// publisher is connected: with several addresses, publishers stand in for
// each other. A publisher can therefore see an envelope twice and must
// de-duplicate by (agent, seq).
//
// A Send waits for its answer: it returns nil for StatusOK, an error
// wrapping transport.ErrRetry or transport.ErrRejected otherwise, ctx's
// error when ctx ends first. Up to WithConcurrency Sends are in flight at
// once; more wait for a slot.
//
// A Receiver works on up to WithConcurrency envelopes at once: each worker
// decodes a frame into memory it reuses, hands the Delivery out through
// Receive and takes no other frame until the Delivery is acknowledged. A
// frame that does not decode is answered StatusRejected (with Seq 0, which a
// Sender accepts as the answer to its request) by the Receiver itself,
// counted in Stats and logged at Warn level; it never reaches Receive.
//
// # Security
//
// tls+tcp:// with WithTLS encrypts the connection and, with a client
// certificate required by the listener (ClientAuth, ClientCAs) and RootCAs
// and ServerName on the dialer, authenticates both ends. mangos makes
// connections in the background and does not say why one fails, so a Sender
// that gets no answer while no connection is up probes its addresses
// itself (Sender.Probe): the error of the Send then says why ("not
// connected: ... certificate signed by unknown authority"), and the reason
// is logged at Warn level.
//
// Per-tenant keys go on top, as wrappers around any Sender and Receiver
// (package transport/seal): seal.NewSender(s, sealer) seals every envelope
// anew at each send, and seal.NewReceiver(r, opener) opens each one before
// handing it out and answers, counts and logs those it refuses. This package
// knows nothing of sealing: a sealed envelope is a header with opaque Sealed
// and Auth bytes.
//
// # Limits
//
// WithMaxFrameSize (4 MiB by default) bounds a frame: a Sender does not send
// a larger envelope (Sender.MaxFrameSize reports the limit, as
// transport.FrameLimiter) and a Receiver rejects one; WithLimits bounds what the
// decoder accepts inside a frame (see transport.Limits). Frames just under
// 64 KiB are sent and received in mangos's pooled buffers, larger ones in
// fresh ones: Sender.PreferredFrameSize reports that size (or the limit
// when smaller), as transport.FramePreferrer, and the agent cuts its
// batches to it.
//
// # Performance
//
// Once warm, the Receiver allocates nothing per measurement: decoders,
// deliveries and mangos messages are reused. Per envelope there remain a
// few small allocations in mangos and one string copy of the frame in the
// decoder; frames over 64 KiB are not pooled by mangos.
package nanomsg
