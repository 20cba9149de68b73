// Package tlsfiles builds TLS configurations from PEM files, the one way
// every part of meterkit that speaks TLS (the nanomsg transport, the
// Riemann, Ceilometer and Gnocchi sinks, the Prometheus driver) reads its
// certificates. Its errors name the setting at fault as the caller calls it
// ("ca", "cert and key"), so that callers only add their own prefix.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Client names the PEM files and the server name of a client's TLS
// configuration. Every field is optional; Cert and Key go together.
type Client struct {
	CA         string // CAs that the server's certificate must chain to; the system's when empty
	Cert, Key  string // the client's certificate and private key, for mutual TLS
	ServerName string // the name the server's certificate must carry; the dialled host when empty
}

// Config loads the files into a client configuration (TLS 1.2 at least).
func (c Client) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CA != "" {
		pool, err := CAs(c.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if c.Cert != "" || c.Key != "" {
		pair, err := KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Server returns the configuration of a server for mutual TLS (TLS 1.2 at
// least): it presents the certificate in cert with the key in key, and
// requires every client to present a certificate that chains to a CA in
// clientCA.
func Server(cert, key, clientCA string) (*tls.Config, error) {
	if cert == "" || key == "" || clientCA == "" {
		return nil, errors.New("needs a certificate, its key and the CA of the clients' certificates")
	}
	pair, err := KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	pool, err := CAs(clientCA)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

// CAs reads a PEM file of CA certificates into a pool. A file without a
// single certificate is an error.
func CAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("ca: no PEM certificate in %s", file)
	}
	return pool, nil
}

// KeyPair loads a certificate and its private key from PEM files; both are
// needed.
func KeyPair(cert, key string) (tls.Certificate, error) {
	if cert == "" || key == "" {
		return tls.Certificate{}, errors.New("cert and key go together: give both or neither")
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cert and key: %w", err)
	}
	return pair, nil
}
