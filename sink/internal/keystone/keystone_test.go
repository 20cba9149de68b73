package keystone

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/sink"
)

func TestPermanentStatus(t *testing.T) {
	for status, want := range map[int]bool{
		200: false, 400: true, 401: false, 403: false, 404: false, 408: false, 409: false,
		413: true, 415: true, 422: true, 425: false, 429: false, 500: false, 502: false, 503: false,
	} {
		require.Equal(t, want, PermanentStatus(status), "status %d", status)
	}
}

func TestClassify(t *testing.T) {
	code := gophercloud.ErrUnexpectedResponseCode{Method: "POST", URL: "http://g:8041/v1/x", Expected: []int{202}, Actual: 400, Body: []byte(" bad \n")}
	err := Classify(fmt.Errorf("wrapped: %w", code))
	require.True(t, sink.IsPermanent(err))
	require.Equal(t, "POST http://g:8041/v1/x: 400 Bad Request: bad", err.Error())

	after := gophercloud.ErrErrorAfterReauthentication{ErrOriginal: gophercloud.ErrUnexpectedResponseCode{Method: "GET", URL: "u", Actual: 401}}
	err = Classify(after)
	require.False(t, sink.IsPermanent(err))
	require.Contains(t, err.Error(), "401 Unauthorized (after re-authentication)")

	err = Classify(gophercloud.ErrUnexpectedResponseCode{Method: "GET", URL: "u", Actual: 503, Body: make([]byte, 2000)})
	require.False(t, sink.IsPermanent(err))
	require.Less(t, len(err.Error()), 600, "long bodies are cut")

	plain := errors.New("dial tcp: connection refused")
	require.Equal(t, plain, Classify(plain))
	require.NoError(t, Classify(nil))
}

func TestRedact(t *testing.T) {
	base := errors.New("boom")
	require.Equal(t, base, RedactErr(base, "pw"), "untouched without secrets: errors.Is still works")

	err := RedactErr(fmt.Errorf("auth with pw and tok-1 failed: %w", base), "pw", "tok-1", "")
	require.Equal(t, "auth with [REDACTED] and [REDACTED] failed: boom", err.Error())

	err = RedactErr(sink.Permanent(errors.New("got pw back")), "pw")
	require.True(t, sink.IsPermanent(err), "classification survives")
	require.NotContains(t, err.Error(), "pw")
}

func TestOpenrcEnvironment(t *testing.T) {
	t.Setenv("OS_CLOUD", "")
	t.Setenv("OS_AUTH_URL", "http://ks:5000/v3")
	t.Setenv("OS_USERNAME", "u")
	t.Setenv("OS_PASSWORD", "p")
	t.Setenv("OS_PROJECT_NAME", "demo")
	t.Setenv("OS_USER_DOMAIN_NAME", "Default")
	t.Setenv("OS_PROJECT_DOMAIN_ID", "default")
	t.Setenv("OS_REGION_NAME", "RegionTwo")
	t.Setenv("OS_INTERFACE", "internal")
	s, err := New(Config{})
	require.NoError(t, err)
	require.True(t, s.auth.AllowReauth)
	require.Equal(t, "Default", s.auth.DomainName)
	require.Equal(t, &gophercloud.AuthScope{ProjectName: "demo", DomainID: "default"}, s.auth.Scope)
	require.Equal(t, "RegionTwo", s.EndpointOpts().Region)
	require.Equal(t, gophercloud.AvailabilityInternal, s.EndpointOpts().Availability)
	require.Equal(t, []string{"p"}, s.secrets)

	hc := s.client
	require.Equal(t, DefaultTimeout, hc.Timeout)
	require.Less(t, hc.Transport.(*http.Transport).IdleConnTimeout.Seconds(), 60.0)

	t.Setenv("OS_AUTH_URL", "")
	_, err = New(Config{})
	require.ErrorContains(t, err, "OS_AUTH_URL")

	_, err = New(Config{Cloud: "nope", CloudsFile: "/nonexistent/clouds.yaml"})
	require.ErrorContains(t, err, `cloud "nope"`)
}
