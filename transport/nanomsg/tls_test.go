package nanomsg_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/transporttest"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and
// publisher.example, and a client certificate.
type testPKI struct {
	pool           *x509.CertPool
	ca             *x509.Certificate
	caKey          *ecdsa.PrivateKey
	server, client tls.Certificate
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p := &testPKI{pool: x509.NewCertPool(), ca: ca, caKey: caKey}
	p.pool.AddCert(ca)
	p.server = p.leaf(t, 2, "publisher", x509.ExtKeyUsageServerAuth, now.Add(time.Hour))
	p.client = p.leaf(t, 3, "agent", x509.ExtKeyUsageClientAuth, now.Add(time.Hour))
	return p
}

// leaf issues a certificate for 127.0.0.1 and publisher.example, valid
// from an hour ago until notAfter.
func (p *testPKI) leaf(t *testing.T, serial int64, name string, usage x509.ExtKeyUsage, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"publisher.example"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (p *testPKI) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
}

func (p *testPKI) clientConfig(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS13}
	if withCert {
		c.Certificates = []tls.Certificate{p.client}
	}
	return c
}

func TestConformanceMutualTLS(t *testing.T) {
	pki := newPKI(t)
	transporttest.Run(t, func(t *testing.T) (transport.Sender, transport.Receiver) {
		r, err := nanomsg.Listen("tls+tcp://127.0.0.1:0", nanomsg.WithTLS(pki.serverConfig()), nanomsg.WithLogger(quiet))
		require.NoError(t, err)
		s, err := nanomsg.Dial([]string{r.Addr()}, nanomsg.WithTLS(pki.clientConfig(true)))
		require.NoError(t, err)
		transporttest.Establish(t, s, r) // the handshakes done before a test closes the pair
		return s, r
	})
}

// TestTLSWithoutClientCert: a sender without a certificate never gets its
// envelope through a listener that requires one.
func TestTLSWithoutClientCert(t *testing.T) {
	noLeak(t)
	pki := newPKI(t)
	r, err := nanomsg.Listen("tls+tcp://127.0.0.1:0", nanomsg.WithTLS(pki.serverConfig()), nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	defer r.Close()
	serve(t, r)
	s, err := nanomsg.Dial([]string{r.Addr()}, nanomsg.WithTLS(pki.clientConfig(false)),
		nanomsg.WithReconnect(20*time.Millisecond, 50*time.Millisecond))
	require.NoError(t, err)
	defer closeAfter(t, r, s)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.Send(ctx, transporttest.Envelope(1)), context.DeadlineExceeded)
	require.Zero(t, r.Stats().Received)
}

// TestTLSServerName: the agent checks the publisher's name.
func TestTLSServerName(t *testing.T) {
	noLeak(t)
	pki := newPKI(t)
	r, err := nanomsg.Listen("tls+tcp://127.0.0.1:0", nanomsg.WithTLS(pki.serverConfig()), nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	defer r.Close()
	serve(t, r)
	cfg := pki.clientConfig(true)
	cfg.ServerName = "publisher.example"
	s, err := nanomsg.Dial([]string{r.Addr()}, nanomsg.WithTLS(cfg))
	require.NoError(t, err)
	defer closeAfter(t, r, s)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Send(ctx, transporttest.Envelope(1)))
	require.True(t, s.Connected())
	require.NoError(t, s.Probe(ctx))
}

// TestTLSRefused: each misconfiguration keeps envelopes out, and the Sender
// says why: in the error of a Send that got no answer, in its log, and from
// Probe.
func TestTLSRefused(t *testing.T) {
	pki, other := newPKI(t), newPKI(t)
	expired := time.Now().Add(-time.Minute)
	for _, tc := range []struct {
		name           string
		server, client func() *tls.Config
		why            string // in the probe's error
	}{
		{"no client cert", pki.serverConfig, func() *tls.Config { return pki.clientConfig(false) }, "certificate required"},
		{"client trusts another CA", pki.serverConfig, func() *tls.Config {
			c := pki.clientConfig(true)
			c.RootCAs = other.pool
			return c
		}, "certificate signed by unknown authority"},
		{"client cert from another CA", pki.serverConfig, func() *tls.Config {
			c := pki.clientConfig(true)
			c.Certificates = []tls.Certificate{other.client}
			return c
		}, "unknown certificate authority"},
		{"wrong server name", pki.serverConfig, func() *tls.Config {
			c := pki.clientConfig(true)
			c.ServerName = "evil.example"
			return c
		}, "not evil.example"},
		{"expired server cert", func() *tls.Config {
			c := pki.serverConfig()
			c.Certificates = []tls.Certificate{pki.leaf(t, 10, "publisher", x509.ExtKeyUsageServerAuth, expired)}
			return c
		}, func() *tls.Config { return pki.clientConfig(true) }, "expired"},
		{"expired client cert", pki.serverConfig, func() *tls.Config {
			c := pki.clientConfig(true)
			c.Certificates = []tls.Certificate{pki.leaf(t, 11, "agent", x509.ExtKeyUsageClientAuth, expired)}
			return c
		}, "expired certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeak(t)
			r, err := nanomsg.Listen("tls+tcp://127.0.0.1:0", nanomsg.WithTLS(tc.server()), nanomsg.WithLogger(quiet))
			require.NoError(t, err)
			defer r.Close()
			serve(t, r)
			var log logBuffer
			s, err := nanomsg.Dial([]string{r.Addr()}, nanomsg.WithTLS(tc.client()),
				nanomsg.WithReconnect(50*time.Millisecond, 100*time.Millisecond),
				nanomsg.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
			require.NoError(t, err)
			defer closeAfter(t, r, s)

			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			err = s.Send(ctx, transporttest.Envelope(1))
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.ErrorContains(t, err, "not connected")
			require.False(t, s.Connected())
			require.Zero(t, r.Stats().Received)

			// The background probe logs the reason; the next Send names it.
			require.Eventually(t, func() bool { return strings.Contains(log.String(), tc.why) }, 5*time.Second, 10*time.Millisecond)
			require.Contains(t, log.String(), "cannot connect")
			ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			require.ErrorContains(t, s.Send(ctx, transporttest.Envelope(2)), tc.why)

			err = s.Probe(t.Context())
			require.ErrorContains(t, err, tc.why)
			require.ErrorContains(t, err, r.Addr())
		})
	}
}

// writePEM writes a certificate and its key as PEM files, and returns their paths.
func writePEM(t *testing.T, c tls.Certificate, name string) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644))
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return certFile, keyFile
}

// TestTLSFromFiles: ServerTLS and ClientTLS, as the reference binaries use
// them.
func TestTLSFromFiles(t *testing.T) {
	noLeak(t)
	pki := newPKI(t)
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.ca.Raw}), 0o644))
	srvCert, srvKey := writePEM(t, pki.server, "publisher")
	cliCert, cliKey := writePEM(t, pki.client, "agent")

	scfg, err := nanomsg.ServerTLS(srvCert, srvKey, caFile)
	require.NoError(t, err)
	ccfg, err := nanomsg.ClientTLS(caFile, cliCert, cliKey, "publisher.example")
	require.NoError(t, err)
	r, err := nanomsg.Listen("tls+tcp://127.0.0.1:0", nanomsg.WithTLS(scfg), nanomsg.WithLogger(quiet))
	require.NoError(t, err)
	defer r.Close()
	serve(t, r)
	s, err := nanomsg.Dial([]string{r.Addr()}, nanomsg.WithTLS(ccfg))
	require.NoError(t, err)
	defer closeAfter(t, r, s)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Send(ctx, transporttest.Envelope(1)))
	require.EqualValues(t, 1, r.Stats().AckedOK)

	_, err = nanomsg.ServerTLS(srvCert, srvKey, "")
	require.Error(t, err, "mutual TLS needs the clients' CA")
	_, err = nanomsg.ClientTLS(caFile, cliCert, "", "")
	require.Error(t, err)
	_, err = nanomsg.ClientTLS(srvKey, "", "", "")
	require.ErrorContains(t, err, "no PEM certificate")
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
