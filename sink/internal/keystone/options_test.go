package keystone

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		opt  Option
		want Options
		err  string // the whole error text; "" for success
	}{
		{opt: Cloud("c"), want: Options{Config: Config{Cloud: "c"}}},
		{opt: CloudsFile("/f"), want: Options{Config: Config{CloudsFile: "/f"}}},
		{opt: Region("R"), want: Options{Config: Config{Region: "R"}}},
		{opt: Interface("internalURL"), want: Options{Config: Config{Interface: "internalURL"}}},
		{opt: Interface(""), want: Options{}},
		{opt: Interface("private"), err: `WithInterface: interface "private" is not public, internal or admin`},
		{opt: Endpoint("https://h:8041/x"), want: Options{Endpoint: "https://h:8041/x"}},
		{opt: Endpoint(""), want: Options{}},
		{opt: Endpoint("h:8041"), err: `WithEndpoint: "h:8041" is not an http(s) URL`},
		{opt: Endpoint("http:///x"), err: `WithEndpoint: "http:///x" is not an http(s) URL`},
		{opt: Timeout(time.Second), want: Options{Config: Config{Timeout: time.Second}}},
		{opt: Timeout(0), want: Options{}},
		{opt: Timeout(-time.Second), err: "WithTimeout: negative duration -1s"},
		{opt: TLS(nil), err: "WithTLS: nil *tls.Config"},
	} {
		t.Run(tc.opt.Name, func(t *testing.T) {
			var o Options
			err := tc.opt.Apply(&o)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				require.Equal(t, Options{}, o, "nothing set")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, o)
		})
	}

	orig := &tls.Config{ServerName: "a"}
	var o Options
	require.NoError(t, TLS(orig).Apply(&o))
	orig.ServerName = "b"
	require.Equal(t, "a", o.TLS.ServerName, "cloned")

	// A zero Timeout is DefaultTimeout in the client New builds.
	c := NewHTTPClient(o.Timeout, nil)
	require.Equal(t, DefaultTimeout, c.Timeout)
}
