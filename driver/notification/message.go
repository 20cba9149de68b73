package notification

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by the errors of Decode: the message cannot be a
// notification, and redelivering it cannot help.
var ErrMalformed = errors.New("notification: malformed message")

// Decode reads one message body as oslo.messaging sends it: the v2 envelope
// {"oslo.version": "2.0", "oslo.message": "<the notification as a JSON
// string>"}, or a legacy (unversioned) body that is the notification
// itself. It returns the notification, which has at least an event_type.
func Decode(body []byte) (map[string]any, error) {
	n, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	if v, ok := n["oslo.version"]; ok {
		ver, _ := v.(string)
		if ver == "" || ver[0] != '2' {
			return nil, fmt.Errorf("%w: oslo.version %v, want 2.x", ErrMalformed, v)
		}
		inner, ok := n["oslo.message"].(string)
		if !ok {
			return nil, fmt.Errorf("%w: oslo.message is not a string", ErrMalformed)
		}
		if n, err = decodeObject([]byte(inner)); err != nil {
			return nil, fmt.Errorf("oslo.message: %w", err)
		}
	}
	et, ok := n["event_type"].(string)
	if !ok || et == "" {
		return n, fmt.Errorf("%w: no event_type", ErrMalformed)
	}
	return n, nil
}

func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var n map[string]any
	if err := dec.Decode(&n); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if n == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	return n, nil
}
