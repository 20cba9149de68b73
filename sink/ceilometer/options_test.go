package ceilometer

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// keystoneEnv gives NewV2 complete OS_* credentials; it does no network I/O.
func keystoneEnv(t *testing.T) {
	t.Setenv("OS_CLOUD", "")
	t.Setenv("OS_AUTH_URL", "http://127.0.0.1:1/v3")
	t.Setenv("OS_USERNAME", "u")
	t.Setenv("OS_PASSWORD", "p")
	t.Setenv("OS_PROJECT_NAME", "p")
	t.Setenv("OS_USER_DOMAIN_NAME", "Default")
	t.Setenv("OS_PROJECT_DOMAIN_NAME", "Default")
}

// The option convention: zero means the package default for counts and
// durations, a negative value is an error from the constructor that names
// the option, and so is every other invalid value.
func TestOptionConvention(t *testing.T) {
	keystoneEnv(t)
	for _, tc := range []struct {
		name   string
		v2     bool // NewV2 with v2opts, else NewNotifier with opts
		opts   []NotifierOption
		v2opts []V2Option
		check  func(t *testing.T, c config)
		err    string // the whole error text; "" for success
	}{
		{name: "notifier defaults", check: func(t *testing.T, c config) {
			require.Equal(t, DefaultTimeout, c.timeout)
			require.Equal(t, DefaultBatchSize, c.batch)
			require.Equal(t, DefaultDialTimeout, c.dialTimeout)
		}},
		{name: "v2 defaults", v2: true, check: func(t *testing.T, c config) {
			require.Equal(t, DefaultTimeout, c.timeout)
			require.Equal(t, DefaultTimeout, c.auth.Timeout)
		}},
		{name: "zero", opts: []NotifierOption{WithTimeout(time.Second), WithTimeout(0), WithBatchSize(7), WithBatchSize(0), WithDialTimeout(time.Second), WithDialTimeout(0)},
			check: func(t *testing.T, c config) {
				require.Equal(t, DefaultTimeout, c.timeout)
				require.Equal(t, DefaultBatchSize, c.batch)
				require.Equal(t, DefaultDialTimeout, c.dialTimeout)
			}},
		{name: "v2 zero timeout", v2: true, v2opts: []V2Option{WithTimeout(time.Second), WithTimeout(0)}, check: func(t *testing.T, c config) {
			require.Equal(t, DefaultTimeout, c.timeout)
			require.Equal(t, DefaultTimeout, c.auth.Timeout)
		}},
		{name: "set", opts: []NotifierOption{WithTimeout(2 * time.Second), WithBatchSize(7), WithDialTimeout(time.Second), WithTLS(&tls.Config{ServerName: "r"})},
			check: func(t *testing.T, c config) {
				require.Equal(t, 2*time.Second, c.timeout)
				require.Equal(t, 7, c.batch)
				require.Equal(t, time.Second, c.dialTimeout)
				require.Equal(t, "r", c.tls.ServerName, "the AMQP connection's")
			}},
		{name: "v2 set", v2: true, v2opts: []V2Option{WithTimeout(2 * time.Second), WithRegion("R2"), WithInterface("admin"), WithEndpoint("http://c:8777/"), WithTLS(&tls.Config{ServerName: "k"})},
			check: func(t *testing.T, c config) {
				require.Equal(t, 2*time.Second, c.timeout)
				require.Equal(t, 2*time.Second, c.auth.Timeout, "each HTTP request too")
				require.Equal(t, "R2", c.auth.Region)
				require.Equal(t, "admin", c.auth.Interface)
				require.Equal(t, "http://c:8777/", c.auth.Endpoint)
				require.Equal(t, "k", c.auth.TLS.ServerName)
			}},
		{name: "negative timeout", opts: []NotifierOption{WithTimeout(-time.Second)}, err: "ceilometer: WithTimeout: negative duration -1s"},
		{name: "v2 negative timeout", v2: true, v2opts: []V2Option{WithTimeout(-time.Second)}, err: "ceilometer: WithTimeout: negative duration -1s"},
		{name: "negative batch", opts: []NotifierOption{WithBatchSize(-1)}, err: "ceilometer: WithBatchSize: negative count -1"},
		{name: "negative dial timeout", opts: []NotifierOption{WithDialTimeout(-time.Millisecond)}, err: "ceilometer: WithDialTimeout: negative duration -1ms"},
		{name: "nil tls", opts: []NotifierOption{WithTLS(nil)}, err: "ceilometer: WithTLS: nil *tls.Config"},
		{name: "bad interface", v2: true, v2opts: []V2Option{WithInterface("private")}, err: `ceilometer: WithInterface: interface "private" is not public, internal or admin`},
		{name: "bad endpoint", v2: true, v2opts: []V2Option{WithEndpoint("ftp://c/")}, err: `ceilometer: WithEndpoint: "ftp://c/" is not an http(s) URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				c   config
				err error
			)
			if tc.v2 {
				var s *V2
				if s, err = NewV2(tc.v2opts...); err == nil {
					c = s.cfg
				}
			} else {
				var n *Notifier
				if n, err = NewNotifier("amqp://h/", tc.opts...); err == nil {
					c = n.cfg
				}
			}
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

// Options of one sink do not compile with the other's constructor; those of
// both are Options, which both take.
var (
	_ NotifierOption = WithSource("s")
	_ V2Option       = WithSource("s")
	_ NotifierOption = WithTimeout(0)
	_ V2Option       = WithTLS(nil)
)

// A nil option is skipped, whatever its type.
func TestNilOptions(t *testing.T) {
	keystoneEnv(t)
	var nilOpt Option
	_, err := NewNotifier("amqp://h/", nil, nilOpt, WithBatchSize(3))
	require.NoError(t, err)
	_, err = NewV2(nil, nilOpt, WithRegion("R"))
	require.NoError(t, err)
}
