package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/sdk/userfile"
)

// maxPEMFileSize bounds a certificate, key or CA file.
const maxPEMFileSize = 1 << 20

// ServerFiles are where a TLS agent's certificate, key and CA are.
type ServerFiles struct {
	CertFile, KeyFile string
	// CAFile holds the CAs that sign client certificates; required with
	// VerifyIncoming.
	CAFile string
	// VerifyIncoming requires every client to present a certificate signed
	// by a CA of CAFile (mutual TLS).
	VerifyIncoming bool
	// MinVersion is the oldest TLS version served, tls.VersionTLS12 when
	// zero. TLS 1.3 is preferred whenever the client speaks it.
	MinVersion uint16
}

// Server serves a certificate and CA that Reload replaces while
// connections come and go: a handshake uses whatever was loaded last, and
// connections already made keep theirs.
type Server struct {
	files  ServerFiles
	logger hclog.Logger

	mu    sync.RWMutex
	cert  *tls.Certificate
	leaf  *x509.Certificate
	pool  *x509.CertPool // nil without CAFile
	caPEM []byte
	// With TrustRuns: the run CA, whether a run is live, and the pool of
	// client CAs, ca_file's and the run CA.
	runCA      *RunCA
	live       func(id string) bool
	clientPool *x509.CertPool
}

// NewServer loads the files, and fails when they cannot be used.
func NewServer(files ServerFiles, logger hclog.Logger) (*Server, error) {
	if files.VerifyIncoming && files.CAFile == "" {
		return nil, errors.New("verify_incoming needs ca_file: the CA that signs client certificates")
	}
	if files.MinVersion == 0 {
		files.MinVersion = tls.VersionTLS12
	}
	s := &Server{files: files, logger: logger}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.logger.Info("TLS enabled", "cert_file", files.CertFile, "serial", s.leaf.SerialNumber.Text(16),
		"expires", s.leaf.NotAfter.Format(time.RFC3339), "verify_incoming", files.VerifyIncoming)
	return s, nil
}

// Reload reads the files again. When they cannot be used it keeps serving
// what it had, logs why, and returns the error.
func (s *Server) Reload() error {
	if err := s.load(); err != nil {
		s.logger.Error("TLS files not reloaded; still serving the previous certificate and CA", "error", err)
		return err
	}
	s.mu.RLock()
	leaf := s.leaf
	s.mu.RUnlock()
	s.logger.Info("TLS files reloaded", "serial", leaf.SerialNumber.Text(16), "expires", leaf.NotAfter.Format(time.RFC3339))
	return nil
}

func (s *Server) load() error {
	f := s.files
	certPEM, err := readPEMFile(f.CertFile)
	if err != nil {
		return fmt.Errorf("read cert_file: %w", err)
	}
	keyPEM, err := readPEMFile(f.KeyFile)
	if err != nil {
		return fmt.Errorf("read key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("load %s and %s: %w", f.CertFile, f.KeyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse %s: %w", f.CertFile, err)
		}
	}
	if now := time.Now(); now.After(leaf.NotAfter) {
		return fmt.Errorf("%s expired on %s: make a new one (`hush tls cert create -server`)", f.CertFile, leaf.NotAfter.Format(time.RFC3339))
	}
	var pool *x509.CertPool
	var caPEM []byte
	if f.CAFile != "" {
		if caPEM, err = readPEMFile(f.CAFile); err != nil {
			return fmt.Errorf("read ca_file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return fmt.Errorf("ca_file %s holds no PEM certificate", f.CAFile)
		}
	}
	s.mu.Lock()
	s.cert, s.leaf, s.pool, s.caPEM = &cert, leaf, pool, caPEM
	s.clientPool = withRunCA(pool, s.runCA)
	s.mu.Unlock()
	return nil
}

// TrustRuns makes the server accept client certificates that ca signed,
// besides those of ca_file, for as long as live says their run is: a
// run's certificate is refused at the handshake once its run has ended.
// live is called on every handshake with such a certificate and must be
// cheap. ca is never trusted to sign a server's certificate: it is not in
// CAPEM.
func (s *Server) TrustRuns(ca *RunCA, live func(id string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runCA, s.live = ca, live
	s.clientPool = withRunCA(s.pool, ca)
}

// withRunCA returns pool with the run CA added, or pool itself without
// one; pool is left as it is.
func withRunCA(pool *x509.CertPool, ca *RunCA) *x509.CertPool {
	if ca == nil {
		return pool
	}
	if pool == nil {
		pool = x509.NewCertPool()
	} else {
		pool = pool.Clone()
	}
	pool.AddCert(ca.cert)
	return pool
}

// CAPEM returns the CA file's content as last loaded, or nil without one
// or on a nil Server (an agent without TLS).
func (s *Server) CAPEM() []byte {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.caPEM
}

// Config returns the tls.Config to serve with. Each handshake takes the
// certificate and CA loaded last.
func (s *Server) Config() *tls.Config {
	return &tls.Config{
		MinVersion: s.files.MinVersion,
		// The agent serves HTTP/1.1 over TLS as over plain TCP.
		NextProtos: []string{"http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s.mu.RLock()
			cert, pool, runCA, live := s.cert, s.clientPool, s.runCA, s.live
			s.mu.RUnlock()
			cfg := &tls.Config{
				MinVersion:   s.files.MinVersion,
				NextProtos:   []string{"http/1.1"},
				Certificates: []tls.Certificate{*cert},
				ClientCAs:    pool,
				ClientAuth:   tls.NoClientCert,
			}
			if s.files.VerifyIncoming {
				cfg.ClientAuth = tls.RequireAndVerifyClientCert
			}
			if runCA != nil {
				// Also on resumed sessions: a run that has ended
				// cannot resume its way in.
				cfg.VerifyConnection = func(cs tls.ConnectionState) error {
					return verifyRun(runCA, live, cs.VerifiedChains)
				}
			}
			return cfg, nil
		},
	}
}

func readPEMFile(path string) ([]byte, error) { return userfile.ReadFile(path, maxPEMFileSize) }

// PeerConfig returns the tls.Config of this server's traffic with the
// cluster's other servers, both ways: its certificate as loaded last, and
// the CA file's CAs as the roots its peers must chain to.
func (s *Server) PeerConfig() *tls.Config {
	cert := func() *tls.Certificate {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.cert
	}
	s.mu.RLock()
	pool := s.pool
	s.mu.RUnlock()
	return &tls.Config{
		MinVersion:           s.files.MinVersion,
		GetCertificate:       func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert(), nil },
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert(), nil },
		RootCAs:              pool,
	}
}
