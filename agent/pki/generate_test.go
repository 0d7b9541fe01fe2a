package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func parseCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustCA(t *testing.T) *PEM {
	t.Helper()
	ca, err := NewCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestNewCA(t *testing.T) {
	ca := mustCA(t)
	c := parseCert(t, ca.Cert)
	if !c.IsCA || !c.MaxPathLenZero || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("got IsCA %v MaxPathLenZero %v KeyUsage %v, want a CA that signs leaves only", c.IsCA, c.MaxPathLenZero, c.KeyUsage)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("got key %T, want ECDSA P-256", c.PublicKey)
	}
	if d := time.Until(c.NotAfter); d < (DefaultCADays-1)*24*time.Hour || d > DefaultCADays*24*time.Hour {
		t.Errorf("got CA valid for %v, want %d days", d, DefaultCADays)
	}
	if !strings.Contains(string(ca.Key), "BEGIN PRIVATE KEY") {
		t.Errorf("got key PEM %.30q, want PKCS #8", ca.Key)
	}
}

func TestNewCert(t *testing.T) {
	ca := mustCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(parseCert(t, ca.Cert))
	other := x509.NewCertPool()
	other.AddCert(parseCert(t, mustCA(t).Cert))

	tests := map[string]struct {
		opts      CertOptions
		usage     x509.ExtKeyUsage
		wantDNS   []string
		wantIPs   []string
		wantUsage []x509.ExtKeyUsage
	}{
		"server with extra names": {
			opts:      CertOptions{Server: true, DNSNames: []string{"hush.example.com", "localhost"}, IPs: []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("127.0.0.1")}},
			usage:     x509.ExtKeyUsageServerAuth,
			wantDNS:   []string{"localhost", "hush.example.com"},
			wantIPs:   []string{"127.0.0.1", "10.0.0.5"},
			wantUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		},
		"server alone": {
			opts:      CertOptions{Server: true},
			usage:     x509.ExtKeyUsageServerAuth,
			wantDNS:   []string{"localhost"},
			wantIPs:   []string{"127.0.0.1"},
			wantUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		},
		"client": {
			opts:      CertOptions{Client: true, Days: 30},
			usage:     x509.ExtKeyUsageClientAuth,
			wantUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := NewCert(ca, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			c := parseCert(t, p.Cert)
			if !slices.Equal(c.DNSNames, tc.wantDNS) {
				t.Errorf("got DNS names %v, want %v", c.DNSNames, tc.wantDNS)
			}
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tc.wantIPs) {
				t.Errorf("got IPs %v, want %v", ips, tc.wantIPs)
			}
			if !slices.Equal(c.ExtKeyUsage, tc.wantUsage) {
				t.Errorf("got ext key usage %v, want %v", c.ExtKeyUsage, tc.wantUsage)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{tc.usage}}); err != nil {
				t.Errorf("verify against its CA: %v", err)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: other, KeyUsages: []x509.ExtKeyUsage{tc.usage}}); err == nil {
				t.Error("verified against another CA, want an error")
			}
			days := tc.opts.Days
			if days == 0 {
				days = DefaultCertDays
			}
			if d := time.Until(c.NotAfter); d < time.Duration(days-1)*24*time.Hour || d > time.Duration(days)*24*time.Hour {
				t.Errorf("got valid for %v, want %d days", d, days)
			}
		})
	}
}

// A node's certificate is a server's, marked as a node's, which no other
// certificate is.
func TestNodeCert(t *testing.T) {
	ca := mustCA(t)
	node, err := NewCert(ca, CertOptions{Node: true, IPs: []net.IP{net.ParseIP("10.0.1.11")}})
	if err != nil {
		t.Fatal(err)
	}
	c := parseCert(t, node.Cert)
	if !IsNode(c) || c.Subject.CommonName != "node.hush" || !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) ||
		!slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || len(c.IPAddresses) != 2 {
		t.Errorf("node certificate: node %v, CN %q, usages %v, IPs %v; want a node's, node.hush, server and client auth, 127.0.0.1 and 10.0.1.11",
			IsNode(c), c.Subject.CommonName, c.ExtKeyUsage, c.IPAddresses)
	}
	for _, opts := range []CertOptions{{Server: true}, {Client: true}} {
		leaf, err := NewCert(ca, opts)
		if err != nil {
			t.Fatal(err)
		}
		if IsNode(parseCert(t, leaf.Cert)) {
			t.Errorf("a certificate of %+v is taken for a node's", opts)
		}
	}
}

func TestNewCertRefuses(t *testing.T) {
	ca, other := mustCA(t), mustCA(t)
	leaf, err := NewCert(ca, CertOptions{Client: true})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		ca   *PEM
		opts CertOptions
		want string
	}{
		"neither server nor client": {ca, CertOptions{}, "choose one"},
		"both":                      {ca, CertOptions{Server: true, Client: true}, "choose one"},
		"node and client":           {ca, CertOptions{Node: true, Client: true}, "not a client's"},
		"negative days":             {ca, CertOptions{Server: true, Days: -1}, "days must be positive"},
		"key of another CA":         {&PEM{Cert: ca.Cert, Key: other.Key}, CertOptions{Server: true}, "does not belong"},
		"a leaf as CA":              {leaf, CertOptions{Server: true}, "not a CA certificate"},
		"no certificate":            {&PEM{Key: ca.Key}, CertOptions{Server: true}, "no PEM CERTIFICATE"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewCert(tc.ca, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t)
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := WriteFiles(ca, cert, key); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{cert: 0o644, key: 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: got mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
	// A second CA must not replace the first, nor leave a half pair.
	other := filepath.Join(dir, "other.pem")
	err := WriteFiles(mustCA(t), other, key)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("got %v, want an error saying the key exists", err)
	}
	if _, err := os.Stat(other); err == nil {
		t.Errorf("%s was written though its key was refused", other)
	}
	b, _ := os.ReadFile(key)
	if string(b) != string(ca.Key) {
		t.Error("the existing key was overwritten")
	}
}
