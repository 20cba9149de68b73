// Package transporttest checks that a transport.Sender and transport.Receiver
// pair keeps the contract of package transport. It is for authors of
// transports; people who only use a transport do not need it.
//
// A transport's own tests call Run once with a function that makes a fresh,
// connected pair:
//
//	func TestConformance(t *testing.T) {
//		transporttest.Run(t, func(t *testing.T) (transport.Sender, transport.Receiver) {
//			r, err := mytransport.Listen("...")
//			require.NoError(t, err)
//			s, err := mytransport.Dial("...")
//			require.NoError(t, err)
//			return s, r
//		})
//	}
//
// Run calls newPair once per subtest and closes both ends itself (Close must
// be safe to call more than once, so a t.Cleanup that closes them too is
// fine). It checks:
//
//   - a full envelope (every header field, measurements of each kind with
//     every field and labels; and a sealed envelope) arrives unchanged, and
//     so does one of transport.MaxVersion whose measurements end with the
//     label meterkit.state; a Sender that is a transport.PeerVersioner
//     reports a version from transport.Version to transport.MaxVersion
//     after an ack;
//   - each ack status reaches the Sender: nil for StatusOK, an error wrapping
//     transport.ErrRetry or transport.ErrRejected that carries the
//     receiver's message otherwise;
//   - concurrent Sends, answered by concurrent Receives, each get the answer
//     to their own envelope;
//   - Send returns ctx's error when ctx is cancelled or its deadline passes
//     while nobody answers, and Receive returns ctx's error when ctx ends;
//   - a Delivery cannot be acknowledged twice;
//   - Close may be called twice; Send and Receive after Close, and a Receive
//     blocked when its Receiver closes, return transport.ErrClosed;
//   - no goroutine outlives the pair (checked with go.uber.org/goleak).
//
// A pair whose connection comes up after Dial returns (a dialer still in
// its handshake) may pass itself to Establish before newPair returns it:
// one envelope sent and acknowledged, so that the subtests that close a
// new pair at once close an established one. Transports built on mangos v3
// need it (see Establish).
//
// A pair that seals and opens envelopes itself, such as the wrappers of
// package transport/seal around any transport, passes Sealing(): it
// carries no envelope its caller sealed, and is checked to reject a forged
// one instead.
//
// Times are compared with time.Time.Equal, so a transport may return them
// in another location (UTC) and without a monotonic reading, but must keep
// nanoseconds. Measurements are sent with an explicit Host, so transports
// that fill an empty Host from the envelope's are not penalised.
//
// Run takes about a second. Do not run it in parallel with other tests of
// the same package: the goroutine check would see their goroutines.
package transporttest
