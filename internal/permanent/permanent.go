// Package permanent is the one marker behind sink.Permanent and
// transport.Permanent: an error that doing the same thing again cannot fix.
package permanent

import "errors"

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Mark marks err as permanent. A nil err stays nil.
func Mark(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// Is reports whether err, or an error it wraps, was marked. An error
// joining several (errors.Join) is permanent only if every one of them is:
// one error that may pass makes the whole worth trying again.
func Is(err error) bool {
	for err != nil {
		switch e := err.(type) {
		case *permanentError:
			return true
		case interface{ Unwrap() []error }:
			errs := e.Unwrap()
			for _, x := range errs {
				if !Is(x) {
					return false
				}
			}
			return len(errs) > 0
		}
		err = errors.Unwrap(err)
	}
	return false
}
