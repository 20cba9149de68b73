package nanomsg

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ClientTLS returns the TLS configuration of a Sender for mutual TLS, from
// PEM files: the publisher's certificate must chain to a CA in caFile (the
// system roots when caFile is empty) and name serverName (the host of the
// address when empty); the Sender presents the certificate in certFile
// with the private key in keyFile, both given or neither. TLS 1.2 at least.
func ClientTLS(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pool, err := loadCAs(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return nil, errors.New("nanomsg: client TLS: a certificate needs its key, and a key its certificate")
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("nanomsg: client TLS: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// ServerTLS returns the TLS configuration of a Receiver for mutual TLS,
// from PEM files: it presents the certificate in certFile with the private
// key in keyFile, and requires every Sender to present a certificate that
// chains to a CA in caFile. TLS 1.2 at least.
func ServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("nanomsg: server TLS: needs a certificate, its key and the CA of the clients' certificates")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("nanomsg: server TLS: %w", err)
	}
	pool, err := loadCAs(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

func loadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("nanomsg: TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("nanomsg: TLS CA: no PEM certificate in %s", file)
	}
	return pool, nil
}
