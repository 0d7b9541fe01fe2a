package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Lifetimes of the run CA and of the certificates it gives runs.
const (
	// RunCADays is long: the run CA lives in the agent's store, outlives
	// agent restarts, and no person renews it.
	RunCADays = 10 * 365
	// RunCertLifetime bounds a run's certificate. It is not what revokes
	// it: the agent refuses it at the first handshake after the run ends
	// (see Server.TrustRuns); the bound limits what a copy is worth should
	// that check ever be lost. Long, as training runs can be, since
	// nothing renews a run's certificate.
	RunCertLifetime = 365 * 24 * time.Hour
)

// runURIPrefix starts the URI SAN that names a run's certificate's run.
const runURIPrefix = "urn:hush:run:"

// RunCA is the agent's own CA for the client certificates of its runs, so
// that a run can call an agent with verify_incoming. The agent trusts it
// for client certificates only, besides ca_file, and never gives it to
// anyone as a CA to trust a server by.
type RunCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// NewRunCA makes a run CA: an ECDSA P-256 key and a self-signed
// certificate that may sign client certificates only.
func NewRunCA() (*PEM, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate run CA key: %w", err)
	}
	tmpl, err := template("hush run CA", RunCADays)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	// crypto/x509 checks extended key usage down the chain: nothing this
	// CA signs can pass as a server.
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create run CA certificate: %w", err)
	}
	return encode(der, key)
}

// LoadRunCA reads a run CA that NewRunCA made.
func LoadRunCA(p *PEM) (*RunCA, error) {
	cert, key, err := ParseCA(p)
	if err != nil {
		return nil, fmt.Errorf("load run CA: %w", err)
	}
	return &RunCA{cert: cert, key: key}, nil
}

// Issue makes a client certificate for run id, valid for RunCertLifetime
// (cut to the CA's own expiry), with an ECDSA P-256 key.
func (c *RunCA) Issue(id string) (*PEM, error) {
	if id == "" || strings.ContainsAny(id, "/:? #") {
		return nil, fmt.Errorf("issue run certificate: run id %q cannot name a certificate", id)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate run key: %w", err)
	}
	tmpl, err := template("run "+id, 0)
	if err != nil {
		return nil, err
	}
	tmpl.NotAfter = time.Now().Add(RunCertLifetime)
	if tmpl.NotAfter.After(c.cert.NotAfter) {
		tmpl.NotAfter = c.cert.NotAfter
	}
	tmpl.URIs = []*url.URL{{Scheme: "urn", Opaque: "hush:run:" + id}}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		return nil, fmt.Errorf("sign run certificate: %w", err)
	}
	return encode(der, key)
}

// runOf tells whether chains, as crypto/tls verified them, lead to this
// CA, and if so which run the leaf names. A leaf this CA signed that names
// no run is reported as a run of id "", which no run has.
func (c *RunCA) runOf(chains [][]*x509.Certificate) (id string, isRun bool) {
	for _, chain := range chains {
		if len(chain) < 2 || !bytes.Equal(chain[len(chain)-1].Raw, c.cert.Raw) {
			continue
		}
		for _, u := range chain[0].URIs {
			if s := u.String(); strings.HasPrefix(s, runURIPrefix) {
				return strings.TrimPrefix(s, runURIPrefix), true
			}
		}
		return "", true
	}
	return "", false
}

// errRunEnded refuses the certificate of a run that is no longer active.
var errRunEnded = errors.New("the client certificate belongs to a run that has ended")

// verifyRun refuses, at the handshake, a client certificate of the run CA
// whose run is not live. Other certificates pass: crypto/tls has checked
// them against ca_file already.
func verifyRun(ca *RunCA, live func(id string) bool, chains [][]*x509.Certificate) error {
	id, isRun := ca.runOf(chains)
	if !isRun {
		return nil
	}
	if id == "" || !live(id) {
		return fmt.Errorf("%w (run %q)", errRunEnded, id)
	}
	return nil
}
