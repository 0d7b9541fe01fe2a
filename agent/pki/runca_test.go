package pki

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func mustRunCA(t *testing.T) *RunCA {
	t.Helper()
	p, err := NewRunCA()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadRunCA(p)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestRunCertificate(t *testing.T) {
	ca := mustRunCA(t)
	p, err := ca.Issue("r-1234")
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCert(t, p.Cert)
	if got := cert.URIs; len(got) != 1 || got[0].String() != "urn:hush:run:r-1234" {
		t.Errorf("got URIs %v, want urn:hush:run:r-1234", got)
	}
	if life := time.Until(cert.NotAfter); life > RunCertLifetime || life < RunCertLifetime-time.Minute {
		t.Errorf("got lifetime %v, want %v", life, RunCertLifetime)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("as a client: got %v, want it verified", err)
	}
	// The run CA must never vouch for a server.
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots}); err == nil {
		t.Error("as a server: got it verified, want it refused")
	}
	if _, err := ca.Issue("a/b"); err == nil {
		t.Error("run id a/b: got a certificate, want an error")
	}
}

// TestServerTrustsLiveRuns: with TrustRuns, a run's certificate passes the
// handshake while its run is live, and not once it has ended; ca_file's
// clients pass as before, and a server cannot pass itself off with a
// certificate of the run CA.
func TestServerTrustsLiveRuns(t *testing.T) {
	f := writeTLSFiles(t, t.TempDir())
	s, err := NewServer(f.files, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ca := mustRunCA(t)
	var mu sync.Mutex
	live := map[string]bool{"live-run": true, "ending-run": true}
	s.TrustRuns(ca, func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		return live[id]
	})
	addr := serve(t, s)
	issue := func(id string) *PEM {
		p, err := ca.Issue(id)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ending := issue("ending-run")
	if _, err := dial(addr, f.ca, ending); err != nil {
		t.Fatalf("run before it ended: got %v, want a connection", err)
	}
	mu.Lock()
	delete(live, "ending-run")
	mu.Unlock()

	tests := map[string]struct {
		cert    *PEM
		wantErr string
	}{
		"live run":              {cert: issue("live-run")},
		"ended run":             {cert: ending, wantErr: "bad certificate"},
		"run never known":       {cert: issue("other-run"), wantErr: "bad certificate"},
		"client of ca_file":     {cert: f.client},
		"no client certificate": {wantErr: "certificate required"},
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
	if strings.Contains(string(s.CAPEM()), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))) {
		t.Error("CAPEM holds the run CA: runs would trust it for servers")
	}
	// A reload keeps the run CA.
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, f.ca, issue("live-run")); err != nil {
		t.Errorf("live run after a reload: got %v, want a connection", err)
	}
}

func TestVerifyRun(t *testing.T) {
	ca, other := mustRunCA(t), mustRunCA(t)
	chain := func(signer *RunCA, id string) [][]*x509.Certificate {
		p, err := signer.Issue(id)
		if err != nil {
			t.Fatal(err)
		}
		return [][]*x509.Certificate{{parseCert(t, p.Cert), signer.cert}}
	}
	live := func(id string) bool { return id == "up" }
	tests := map[string]struct {
		chains  [][]*x509.Certificate
		wantErr bool
	}{
		"live run":              {chains: chain(ca, "up")},
		"ended run":             {chains: chain(ca, "down"), wantErr: true},
		"another CA's chain":    {chains: chain(other, "down")},
		"no client certificate": {},
		"leaf naming no run":    {chains: [][]*x509.Certificate{{ca.cert, ca.cert}}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := verifyRun(ca, live, tc.chains)
			if got := err != nil; got != tc.wantErr {
				t.Errorf("got error %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}
