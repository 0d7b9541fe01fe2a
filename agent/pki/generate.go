// Package pki is the agent's certificates: making a CA and the certificates
// it signs, as `hush tls` does, and serving a certificate that is reloaded
// without a restart. It uses only crypto/tls and crypto/x509.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"slices"
	"time"
)

// Default lifetimes, in days.
const (
	DefaultCADays   = 5 * 365
	DefaultCertDays = 365
)

// backdate lets a fresh certificate be valid on hosts whose clocks are a
// little behind the one that made it.
const backdate = 5 * time.Minute

// PEM is a certificate and its private key, PEM encoded.
type PEM struct {
	Cert []byte
	Key  []byte
}

// CAOptions describe a new CA.
type CAOptions struct {
	// CommonName names the CA; default "hush CA".
	CommonName string
	// Days is how long it is valid; default DefaultCADays.
	Days int
}

// NewCA makes a self-signed CA with an ECDSA P-256 key, which may sign
// leaf certificates only (no intermediate CAs).
func NewCA(opts CAOptions) (*PEM, error) {
	if opts.CommonName == "" {
		opts.CommonName = "hush CA"
	}
	if opts.Days == 0 {
		opts.Days = DefaultCADays
	}
	if opts.Days < 0 {
		return nil, fmt.Errorf("days must be positive, got %d", opts.Days)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl, err := template(opts.CommonName, opts.Days)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	return encode(der, key)
}

// CertOptions describe a leaf certificate.
type CertOptions struct {
	// Server makes a certificate an agent serves; Client one that a
	// client presents to an agent with verify_incoming. One is required.
	Server, Client bool
	// Node makes a server certificate for a client agent: it serves its
	// API and calls the servers like a server certificate, and is marked
	// (NodeRoleURI) so that the servers never take its holder for one of
	// them. It implies Server.
	Node bool
	// CommonName names the holder; default "server.hush", "node.hush" or
	// "client.hush".
	CommonName string
	// DNSNames and IPs are the server's names, besides localhost and
	// 127.0.0.1, which every server certificate carries so that the
	// CLI and runs on the agent's own host can reach it.
	DNSNames []string
	IPs      []net.IP
	// Days is how long it is valid; default DefaultCertDays. It is cut to
	// the CA's own expiry.
	Days int
}

// NodeRoleURI marks a client agent's certificate (CertOptions.Node).
const NodeRoleURI = "hush:role:node"

var nodeRole = &url.URL{Scheme: "hush", Opaque: "role:node"}

// IsNode reports whether cert is a client agent's (CertOptions.Node).
func IsNode(cert *x509.Certificate) bool {
	for _, u := range cert.URIs {
		if u.String() == NodeRoleURI {
			return true
		}
	}
	return false
}

// NewCert makes a leaf certificate with an ECDSA P-256 key, signed by ca.
func NewCert(ca *PEM, opts CertOptions) (*PEM, error) {
	if opts.Node {
		if opts.Client {
			return nil, errors.New("a node's certificate is a server's, not a client's: drop one")
		}
		opts.Server = true
	}
	if opts.Server == opts.Client {
		return nil, errors.New("a certificate is for a server or for a client: choose one")
	}
	if opts.Days == 0 {
		opts.Days = DefaultCertDays
	}
	if opts.Days < 0 {
		return nil, fmt.Errorf("days must be positive, got %d", opts.Days)
	}
	caCert, caKey, err := ParseCA(ca)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	name := opts.CommonName
	switch {
	case name != "":
	case opts.Node:
		name = "node.hush"
	case opts.Server:
		name = "server.hush"
	default:
		name = "client.hush"
	}
	tmpl, err := template(name, opts.Days)
	if err != nil {
		return nil, err
	}
	if tmpl.NotAfter.After(caCert.NotAfter) {
		tmpl.NotAfter = caCert.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if opts.Server {
		// Servers may also call other agents, as Consul's and
		// Nomad's server certificates may.
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames = appendNew([]string{"localhost"}, opts.DNSNames...)
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		for _, ip := range opts.IPs {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if opts.Node {
		tmpl.URIs = []*url.URL{nodeRole}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	return encode(der, key)
}

// ParseCA reads a CA certificate and its key, and checks that they belong
// together and that the certificate is a CA's.
func ParseCA(ca *PEM) (*x509.Certificate, crypto.Signer, error) {
	block, _ := pem.Decode(ca.Cert)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, errors.New("read CA certificate: no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("read CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, nil, errors.New("read CA certificate: it is not a CA certificate")
	}
	key, err := parseKey(ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("read CA key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, errors.New("the CA key does not belong to the CA certificate")
	}
	return cert, key, nil
}

// parseKey reads a PKCS #8, SEC 1 (EC) or PKCS #1 (RSA) private key.
func parseKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", key)
	}
	return s, nil
}

func template(commonName string, days int) (*x509.Certificate, error) {
	// 128 random bits: serials must be unique per CA and unpredictable.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.AddDate(0, 0, days),
	}, nil
}

func encode(der []byte, key *ecdsa.PrivateKey) (*PEM, error) {
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return &PEM{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}),
	}, nil
}

func appendNew(s []string, more ...string) []string {
	for _, m := range more {
		if !slices.Contains(s, m) {
			s = append(s, m)
		}
	}
	return s
}
