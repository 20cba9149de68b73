package transport

import "errors"

// Errors say what to do. A Sender's error is one of:
//
//   - permanent (IsPermanent): sending the same envelope again cannot
//     succeed, whatever the receiver does: the sender's own frame limit
//     (ErrTooLarge), an envelope that does not encode, one a wrapper cannot
//     seal (another tenant's). The caller drops the batch, or splits it when
//     it is too large, and goes on with the next one.
//   - an answer of the receiver (*ReplyError): StatusRetry, to send again
//     later; StatusRejected, with a Reason saying whether the batch is too
//     large (split it), the receiver refuses this sender (keep it and
//     back off) or the batch is bad (drop it).
//   - anything else (ctx ended, no connection, ErrClosed): transient; send
//     again later.

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that sending the same envelope again cannot
// fix. A nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked
// Permanent. An error joining several (errors.Join) is permanent only if
// every one of them is.
func IsPermanent(err error) bool {
	for err != nil {
		switch e := err.(type) {
		case *permanentError:
			return true
		case interface{ Unwrap() []error }:
			errs := e.Unwrap()
			for _, x := range errs {
				if !IsPermanent(x) {
					return false
				}
			}
			return len(errs) > 0
		}
		err = errors.Unwrap(err)
	}
	return false
}
