package transport

// Wrappers and capabilities.
//
// A Sender or Receiver may wrap another one to add something to every
// transport (package transport/seal seals and opens envelopes so). A
// wrapper says what it wraps with an Unwrap method, as errors do:
//
//	Unwrap() Sender    // on a wrapping Sender
//	Unwrap() Receiver  // on a wrapping Receiver
//
// and As finds, through any number of such wrappers, a capability of the
// transport underneath. Only capabilities that read are found this way:
// counters (Stats), connection state, addresses. A capability that changes
// what reaches the wire, such as FrameLimiter or a send of bytes encoded
// beforehand, is never taken from below a wrapper, since the wrapper
// changes the frame: a wrapper implements it itself, from its inner's, or
// does not offer it. Callers assert such capabilities on the value they
// hold, never through As.

// FrameLimiter is implemented by a Sender that bounds the size of the
// frame one envelope makes: MaxFrameSize is the largest encoded envelope
// (AppendEnvelope) it sends, in bytes, and a larger one fails with an
// error wrapping ErrTooLarge. Zero or less means no limit of its own. A
// wrapping Sender that changes the frame reports its own limit.
type FrameLimiter interface {
	MaxFrameSize() int
}

// UnwrapSender returns the Sender s wraps, when s has a method
// Unwrap() Sender, and nil otherwise.
func UnwrapSender(s Sender) Sender {
	if u, ok := s.(interface{ Unwrap() Sender }); ok {
		return u.Unwrap()
	}
	return nil
}

// UnwrapReceiver returns the Receiver r wraps, when r has a method
// Unwrap() Receiver, and nil otherwise.
func UnwrapReceiver(r Receiver) Receiver {
	if u, ok := r.(interface{ Unwrap() Receiver }); ok {
		return u.Unwrap()
	}
	return nil
}

// As finds the first of x, what x wraps, what that wraps, and so on
// (through Unwrap() Sender and Unwrap() Receiver methods), that
// implements T, and returns it; ok is false when none does. x is a Sender
// or a Receiver. Use it for capabilities that only read (see above):
//
//	if st, ok := transport.As[interface{ Stats() nanomsg.ReceiverStats }](r); ok {
//		log.Print(st.Stats())
//	}
func As[T any](x any) (found T, ok bool) {
	for depth := 0; x != nil && depth < 100; depth++ { // a bound against a wrapper that wraps itself
		if t, ok := x.(T); ok {
			return t, true
		}
		switch u := x.(type) {
		case interface{ Unwrap() Sender }:
			if s := u.Unwrap(); s != nil {
				x = s
				continue
			}
		case interface{ Unwrap() Receiver }:
			if r := u.Unwrap(); r != nil {
				x = r
				continue
			}
		}
		break
	}
	return found, false
}
