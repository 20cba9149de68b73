package gnocchi

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// keystoneEnv gives New complete OS_* credentials; New does no network I/O.
func keystoneEnv(t *testing.T) {
	t.Setenv("OS_CLOUD", "")
	t.Setenv("OS_AUTH_URL", "http://127.0.0.1:1/v3")
	t.Setenv("OS_USERNAME", "u")
	t.Setenv("OS_PASSWORD", "p")
	t.Setenv("OS_PROJECT_NAME", "p")
	t.Setenv("OS_USER_DOMAIN_NAME", "Default")
	t.Setenv("OS_PROJECT_DOMAIN_NAME", "Default")
}

// The option convention: zero means the package default, a negative value
// is an error from New that names the option, and so is every other invalid
// value; the empty string of a string option means its default.
func TestOptionConvention(t *testing.T) {
	keystoneEnv(t)
	for _, tc := range []struct {
		name  string
		opts  []Option
		check func(t *testing.T, c config)
		err   string // the whole error text; "" for success
	}{
		{name: "no options", check: func(t *testing.T, c config) {
			require.Equal(t, DefaultTimeout, c.timeout)
			require.Equal(t, DefaultTimeout, c.auth.Timeout)
			require.Equal(t, DefaultResourceType, c.resourceType)
			require.Empty(t, c.auth.Endpoint)
		}},
		{name: "zero timeout", opts: []Option{WithTimeout(5 * time.Second), WithTimeout(0)}, check: func(t *testing.T, c config) {
			require.Equal(t, DefaultTimeout, c.timeout)
			require.Equal(t, DefaultTimeout, c.auth.Timeout)
		}},
		{name: "timeout", opts: []Option{WithTimeout(5 * time.Second)}, check: func(t *testing.T, c config) {
			require.Equal(t, 5*time.Second, c.timeout)
			require.Equal(t, 5*time.Second, c.auth.Timeout, "each HTTP request too")
		}},
		{name: "negative timeout", opts: []Option{WithTimeout(-time.Second)}, err: "gnocchi: WithTimeout: negative duration -1s"},
		{name: "empty strings", opts: []Option{WithCloud(""), WithCloudsFile(""), WithRegion(""), WithInterface(""), WithEndpoint("")},
			check: func(t *testing.T, c config) {
				require.Equal(t, "", c.auth.Cloud+c.auth.CloudsFile+c.auth.Region+c.auth.Interface+c.auth.Endpoint)
			}},
		{name: "auth options", opts: []Option{WithRegion("R2"), WithInterface("internal"), WithEndpoint("https://g:8041/"), WithTLS(&tls.Config{ServerName: "g"})},
			check: func(t *testing.T, c config) {
				require.Equal(t, "R2", c.auth.Region)
				require.Equal(t, "internal", c.auth.Interface)
				require.Equal(t, "https://g:8041/", c.auth.Endpoint)
				require.Equal(t, "g", c.auth.TLS.ServerName)
			}},
		{name: "bad interface", opts: []Option{WithInterface("private")}, err: `gnocchi: WithInterface: interface "private" is not public, internal or admin`},
		{name: "bad endpoint", opts: []Option{WithEndpoint("gnocchi:8041")}, err: `gnocchi: WithEndpoint: "gnocchi:8041" is not an http(s) URL`},
		{name: "nil tls", opts: []Option{WithTLS(nil)}, err: "gnocchi: WithTLS: nil *tls.Config"},
		{name: "meterkit label as an attribute", opts: []Option{WithResourceAttributes("host", "meterkit.state")},
			err: `gnocchi: WithResourceAttributes: "meterkit.state": labels prefixed "meterkit." are meterkit's own and never stored`},
		{name: "empty resource type", opts: []Option{WithResourceType("")}, err: "gnocchi: WithResourceType: empty type"},
		{name: "basic auth, zero timeout", opts: []Option{WithBasicAuth(""), WithEndpoint("http://g:8041"), WithTimeout(0)},
			check: func(t *testing.T, c config) {
				require.Equal(t, DefaultTimeout, c.timeout)
				require.Equal(t, DefaultBasicUser, c.basicUser)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.opts...)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			tc.check(t, s.cfg)
		})
	}
}
