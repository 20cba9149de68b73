package nanomsg

import (
	"crypto/tls"
	"fmt"

	"github.com/meterkit/meter/internal/tlsfiles"
)

// ClientTLS returns the TLS configuration of a Sender for mutual TLS, from
// PEM files: the publisher's certificate must chain to a CA in caFile (the
// system roots when caFile is empty) and name serverName (the host of the
// address when empty); the Sender presents the certificate in certFile
// with the private key in keyFile, both given or neither. TLS 1.2 at least.
func ClientTLS(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg, err := tlsfiles.Client{CA: caFile, Cert: certFile, Key: keyFile, ServerName: serverName}.Config()
	if err != nil {
		return nil, fmt.Errorf("nanomsg: client TLS: %w", err)
	}
	return cfg, nil
}

// ServerTLS returns the TLS configuration of a Receiver for mutual TLS,
// from PEM files: it presents the certificate in certFile with the private
// key in keyFile, and requires every Sender to present a certificate that
// chains to a CA in caFile. TLS 1.2 at least.
func ServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cfg, err := tlsfiles.Server(certFile, keyFile, caFile)
	if err != nil {
		return nil, fmt.Errorf("nanomsg: server TLS: %w", err)
	}
	return cfg, nil
}
