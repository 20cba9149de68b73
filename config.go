package meter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Config is the configuration of one configurable part — a driver, a
// stage — kept undecoded until the part's factory decodes it into its own
// struct with Decode. Drivers know it as driver.Config, an alias. The zero
// Config is empty: Decode leaves the target's defaults as they are.
type Config struct {
	raw json.RawMessage
}

// ConfigFromJSON wraps a JSON object as a Config.
func ConfigFromJSON(b []byte) Config { return Config{raw: bytes.Clone(b)} }

// ConfigFrom encodes v (a struct or a map) as a Config; handy in tests.
func ConfigFrom(v any) (Config, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Config{raw: b}, nil
}

// MarshalJSON and UnmarshalJSON let a Config sit inside a larger JSON file.
func (c Config) MarshalJSON() ([]byte, error) {
	if len(c.raw) == 0 {
		return []byte("{}"), nil
	}
	return c.raw, nil
}

// UnmarshalJSON keeps the raw object for Decode.
func (c *Config) UnmarshalJSON(b []byte) error {
	c.raw = bytes.Clone(b)
	return nil
}

// IsZero reports whether the config is empty.
func (c Config) IsZero() bool {
	return len(c.raw) == 0 || string(c.raw) == "null" || string(bytes.TrimSpace(c.raw)) == "{}"
}

// Decode decodes the configuration into v, a pointer to the part's config
// struct (with `json` tags). Fields missing from the configuration keep the
// values v already holds, so set defaults before calling Decode. Unknown
// fields are an error: a typo in a config file must not pass silently.
// Errors start with "config: ", for the caller to wrap with the part's name.
func (c Config) Decode(v any) error {
	if c.IsZero() {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(c.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("config: trailing data after the object")
	}
	return nil
}

// Duration is a time.Duration that a configuration writes as a string, like
// "10s" or "1m30s", for the fields of a config struct:
//
//	Timeout meter.Duration `json:"timeout,omitempty"`
type Duration time.Duration

// UnmarshalJSON parses a duration string ("10s", "1m30s", "250ms").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"10s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }
