package tlsfiles_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/internal/tlsfiles"
	"github.com/meterkit/meter/internal/tlsfiles/tlsfilestest"
)

// A client and a server made from the same files complete a mutual TLS
// handshake; a client without a certificate is refused.
func TestMutualHandshake(t *testing.T) {
	dir := t.TempDir()
	srvCert, srvKey := tlsfilestest.WritePair(t, dir, "server")
	cliCert, cliKey := tlsfilestest.WritePair(t, dir, "client")
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
	cert, key := tlsfilestest.WritePair(t, dir, "a")
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
