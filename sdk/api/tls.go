package api

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/hush-sh/hush/sdk/userfile"
)

// Environment variables naming the TLS files a client uses, read in
// DefaultConfig.
const (
	EnvCACert     = "HUSH_CACERT"
	EnvClientCert = "HUSH_CLIENT_CERT"
	EnvClientKey  = "HUSH_CLIENT_KEY"
)

// maxPEMFileSize bounds a CA, certificate or key file.
const maxPEMFileSize = 1 << 20

// TLSFiles name the PEM files a client uses to reach an https agent.
type TLSFiles struct {
	// CACert holds the CA certificates that the agent's certificate is
	// checked against; empty means the system's.
	CACert string
	// ClientCert and ClientKey are the client's certificate and key, for
	// an agent that requires mutual TLS (verify_incoming); both or
	// neither.
	ClientCert, ClientKey string
}

// IsZero reports whether no file is named.
func (f TLSFiles) IsZero() bool { return f == TLSFiles{} }

// ClientConfig reads the files into a tls.Config for an http.Transport,
// or returns nil when no file is named.
func (f TLSFiles) ClientConfig() (*tls.Config, error) {
	if f.IsZero() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CACert != "" {
		pem, err := userfile.ReadFile(f.CACert, maxPEMFileSize)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s holds no PEM certificate", f.CACert)
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.ClientCert == "" && f.ClientKey == "":
	case f.ClientCert == "" || f.ClientKey == "":
		return nil, errors.New("a client certificate needs its key, and a key its certificate: give both")
	default:
		certPEM, err := userfile.ReadFile(f.ClientCert, maxPEMFileSize)
		if err != nil {
			return nil, fmt.Errorf("read client certificate: %w", err)
		}
		keyPEM, err := userfile.ReadFile(f.ClientKey, maxPEMFileSize)
		if err != nil {
			return nil, fmt.Errorf("read client key: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s and key %s: %w", f.ClientCert, f.ClientKey, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// tlsHint says how to fix a failed TLS handshake, or "" when err is not
// one that a setting fixes.
func tlsHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var record tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.As(err, &unknown):
		return fmt.Sprintf("the agent's certificate is not signed by a CA this client trusts: give the CA with %s or --ca-cert", EnvCACert)
	case errors.As(err, &hostname):
		return "the agent's certificate is not for this address: connect by a name or IP it carries, or make it a new one with `hush tls cert create -server -dns NAME -ip IP`"
	case strings.Contains(msg, "certificate required"):
		return fmt.Sprintf("the agent requires a client certificate (mutual TLS): give one with %s and %s, or --client-cert and --client-key", EnvClientCert, EnvClientKey)
	case strings.Contains(msg, "unknown certificate authority") || strings.Contains(msg, "bad certificate"):
		return "the agent refused this client's certificate: use one signed by the agent's CA (`hush tls cert create -client`)"
	case errors.As(err, &record) || strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return "the agent does not serve HTTPS here: use an http:// address"
	}
	return ""
}
