package tlsfiles_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/internal/tlsfiles"
)

// writePair writes a self-signed certificate (also a CA) for 127.0.0.1
// and its key, and returns their paths.
func writePair(t *testing.T, dir, name string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	cert, key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return cert, key
}

// A client and a server made from the same files complete a mutual TLS
// handshake; a client without a certificate is refused.
func TestMutualHandshake(t *testing.T) {
	dir := t.TempDir()
	srvCert, srvKey := writePair(t, dir, "server")
	cliCert, cliKey := writePair(t, dir, "client")
	srvCfg, err := tlsfiles.Server(srvCert, srvKey, cliCert)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_, _ = c.Write([]byte("x"))
			_ = c.Close()
		}
	}()
	dial := func(c tlsfiles.Client) error {
		cfg, err := c.Config()
		require.NoError(t, err)
		conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	require.NoError(t, dial(tlsfiles.Client{CA: srvCert, Cert: cliCert, Key: cliKey}))
	require.Error(t, dial(tlsfiles.Client{CA: srvCert}), "no client certificate")
	require.Error(t, dial(tlsfiles.Client{CA: cliCert, Cert: cliCert, Key: cliKey}), "server not trusted")
}

func TestErrorsNameTheSetting(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, "a")
	empty := filepath.Join(dir, "empty.pem")
	require.NoError(t, os.WriteFile(empty, []byte("no pem here"), 0o600))
	for _, c := range []struct {
		client tlsfiles.Client
		want   string
	}{
		{tlsfiles.Client{CA: filepath.Join(dir, "missing")}, "ca: open "},
		{tlsfiles.Client{CA: empty}, "ca: no PEM certificate in " + empty},
		{tlsfiles.Client{Cert: cert}, "cert and key go together"},
		{tlsfiles.Client{Key: key}, "cert and key go together"},
		{tlsfiles.Client{Cert: cert, Key: empty}, "cert and key: "},
	} {
		_, err := c.client.Config()
		require.ErrorContains(t, err, c.want, "%+v", c.client)
	}
	_, err := tlsfiles.Server(cert, key, "")
	require.ErrorContains(t, err, "CA of the clients")
	cfg, err := tlsfiles.Client{ServerName: "meter.example"}.Config()
	require.NoError(t, err)
	require.Equal(t, "meter.example", cfg.ServerName)
	require.Nil(t, cfg.RootCAs, "the system's roots")
	require.Equal(t, uint16(tls.VersionTLS12), cfg.MinVersion)
}
