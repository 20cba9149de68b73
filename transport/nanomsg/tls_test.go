package nanomsg_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/transporttest"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate.
type testPKI struct {
	pool           *x509.CertPool
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
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.server = leaf(2, "publisher", x509.ExtKeyUsageServerAuth)
	p.client = leaf(3, "agent", x509.ExtKeyUsageClientAuth)
	return p
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
	defer s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.Send(ctx, transporttest.Envelope(1)), context.DeadlineExceeded)
	require.Zero(t, r.Stats().Received)
}
