package transport

import "github.com/meterkit/meter/internal/permanent"

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

// Permanent marks err as one that sending the same envelope again cannot
// fix. A nil err stays nil. It is the same mark as sink.Permanent.
func Permanent(err error) error { return permanent.Mark(err) }

// IsPermanent reports whether err, or an error it wraps, was marked
// Permanent. An error joining several (errors.Join) is permanent only if
// every one of them is.
func IsPermanent(err error) bool { return permanent.Is(err) }
