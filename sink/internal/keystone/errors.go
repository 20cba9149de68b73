package keystone

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/meterkit/meter/sink"
)

// maxBody bounds how much of a response body an error quotes.
const maxBody = 512

// HTTPError is an answer from an OpenStack service with an unexpected
// status code.
type HTTPError struct {
	Method string
	URL    string
	Status int
	// Body is the start of the response body (at most 512 bytes).
	Body []byte
	// Reauthenticated is true when gophercloud got a 401, fetched a new
	// token, and this is the answer to the retried request.
	Reauthenticated bool
}

func (e *HTTPError) Error() string {
	msg := e.Method + " " + e.URL + ": " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
	if e.Reauthenticated {
		msg += " (after re-authentication)"
	}
	if b := bytes.TrimSpace(e.Body); len(b) > 0 {
		msg += ": " + string(b)
	}
	return msg
}

// AsHTTPError finds the HTTP status of a gophercloud request error. It
// returns nil when err is not an unexpected answer (a connection failure,
// a timeout, a failed re-authentication).
func AsHTTPError(err error) *HTTPError {
	var he *HTTPError
	if errors.As(err, &he) {
		return he
	}
	var reauth gophercloud.ErrErrorAfterReauthentication
	after := errors.As(err, &reauth)
	var pReauth *gophercloud.ErrErrorAfterReauthentication
	after = after || errors.As(err, &pReauth)
	var code gophercloud.ErrUnexpectedResponseCode
	var pcode *gophercloud.ErrUnexpectedResponseCode
	switch {
	case errors.As(err, &code):
	case errors.As(err, &pcode):
		code = *pcode
	default:
		return nil
	}
	body := code.Body
	if len(body) > maxBody {
		body = append(body[:maxBody:maxBody], "..."...)
	}
	return &HTTPError{Method: code.Method, URL: code.URL, Status: code.Actual, Body: body, Reauthenticated: after}
}

// PermanentStatus reports whether an HTTP status means that the request
// itself is wrong, so that sending it again cannot help: every 4xx except
// 401 and 403 (credentials or roles, which an operator can fix), 404 (a
// wrong endpoint in the catalogue), 408, 409, 425 and 429.
func PermanentStatus(status int) bool {
	if status < 400 || status >= 500 {
		return false
	}
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusRequestTimeout,
		http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return true
}

// Classify turns err from a gophercloud request into the error a sink
// returns: an *HTTPError wrapped in sink.Permanent when PermanentStatus says
// so, an *HTTPError otherwise, and err itself (retryable) when there was no
// answer.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	he := AsHTTPError(err)
	if he == nil {
		return err
	}
	if PermanentStatus(he.Status) {
		return sink.Permanent(he)
	}
	return he
}
