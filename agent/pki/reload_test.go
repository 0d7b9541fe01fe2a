package pki

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// tlsFiles writes a CA, a server pair and a client pair into dir.
type tlsFiles struct {
	ca, client *PEM
	files      ServerFiles
}

func writeTLSFiles(t *testing.T, dir string) *tlsFiles {
	t.Helper()
	ca := mustCA(t)
	srv, err := NewCert(ca, CertOptions{Server: true})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewCert(ca, CertOptions{Client: true})
	if err != nil {
		t.Fatal(err)
	}
	f := ServerFiles{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem"),
		CAFile: filepath.Join(dir, "ca.pem"), VerifyIncoming: true}
	for path, b := range map[string][]byte{f.CertFile: srv.Cert, f.KeyFile: srv.Key, f.CAFile: ca.Cert} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &tlsFiles{ca: ca, client: cl, files: f}
}

// serve accepts connections with s until the test ends, answering each
// with "ok" once its handshake succeeds.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					io.WriteString(c, "ok")
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial connects as a client with cert, trusting ca, reads the server's
// answer, and returns the server certificate's serial.
func dial(addr string, ca, cert *PEM) (*big.Int, error) {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.Cert)
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	if cert != nil {
		pair, err := tls.X509KeyPair(cert.Cert, cert.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// With TLS 1.3 a refused client certificate shows on the first read.
	if _, err := io.ReadAll(c); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func TestServerMutualTLS(t *testing.T) {
	f := writeTLSFiles(t, t.TempDir())
	s, err := NewServer(f.files, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s)
	strangerCA := mustCA(t)
	stranger, err := NewCert(strangerCA, CertOptions{Client: true})
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := NewCert(f.ca, CertOptions{Server: true})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		cert    *PEM
		wantErr string
	}{
		"client certificate of the CA": {cert: f.client},
		"no client certificate":        {wantErr: "certificate required"},
		"certificate of another CA":    {cert: stranger, wantErr: "unknown certificate authority"},
		// A server certificate is also good for client auth, as in
		// Consul and Nomad.
		"server certificate of the CA": {cert: serverCert},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := dial(addr, f.ca, tc.cert)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("got %v, want a connection", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	if string(s.CAPEM()) != string(f.ca.Cert) {
		t.Error("CAPEM does not return the CA file")
	}
}

func TestServerReload(t *testing.T) {
	dir := t.TempDir()
	f := writeTLSFiles(t, dir)
	s, err := NewServer(f.files, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s)
	first, err := dial(addr, f.ca, f.client)
	if err != nil {
		t.Fatal(err)
	}

	next, err := NewCert(f.ca, CertOptions{Server: true})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(f.files.CertFile, next.Cert, 0o600)
	// The certificate alone does not match the old key: keep serving.
	if err := s.Reload(); err == nil {
		t.Fatal("reload of a certificate without its key succeeded")
	}
	if got, err := dial(addr, f.ca, f.client); err != nil || got.Cmp(first) != 0 {
		t.Fatalf("after a bad reload got serial %v (%v), want the old %v", got, err, first)
	}
	os.WriteFile(f.files.KeyFile, next.Key, 0o600)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	got, err := dial(addr, f.ca, f.client)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cmp(first) == 0 {
		t.Errorf("got serial %v after reload, want a new one", got)
	}
	if want := parseCert(t, next.Cert).SerialNumber; got.Cmp(want) != 0 {
		t.Errorf("got serial %v, want %v", got, want)
	}
}

func TestNewServerRefuses(t *testing.T) {
	dir := t.TempDir()
	f := writeTLSFiles(t, dir)
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	tests := map[string]struct {
		change func(*ServerFiles)
		want   string
	}{
		"verify without CA": {func(f *ServerFiles) { f.CAFile = "" }, "verify_incoming needs ca_file"},
		"missing cert":      {func(f *ServerFiles) { f.CertFile = filepath.Join(dir, "none.pem") }, "read cert_file"},
		"bad CA":            {func(f *ServerFiles) { f.CAFile = garbage }, "holds no PEM certificate"},
		"key of another":    {func(f *ServerFiles) { f.KeyFile = f.CAFile }, "load "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			files := f.files
			tc.change(&files)
			_, err := NewServer(files, hclog.NewNullLogger())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
