package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
)

// TLS versions for min_version.
const (
	TLS12 = "tls12"
	TLS13 = "tls13"
)

// TLSConfig is the tls block: the agent serves HTTPS with it.
type TLSConfig struct {
	// CertFile is the agent's certificate, PEM; it may carry
	// intermediate CAs after it. Required. Reread on SIGHUP.
	CertFile string `hcl:"cert_file,optional"`
	// KeyFile is the certificate's private key, PEM. Required. Reread on
	// SIGHUP.
	KeyFile string `hcl:"key_file,optional"`
	// CAFile holds the CA certificates, PEM, that sign client
	// certificates; runs are given it to trust the agent, so it should
	// hold the CA of CertFile too. Required with VerifyIncoming. Reread on
	// SIGHUP.
	CAFile string `hcl:"ca_file,optional"`
	// VerifyIncoming requires every client to present a certificate
	// signed by a CA of CAFile (mutual TLS), besides its token. Default
	// false.
	VerifyIncoming bool `hcl:"verify_incoming,optional"`
	// MinVersion is the oldest TLS version the agent accepts: "tls12" or
	// "tls13". Default "tls12"; TLS 1.3 is used whenever the client
	// speaks it.
	MinVersion string `hcl:"min_version,optional"`

	// DeclRange is where the block was declared.
	DeclRange hcl.Range
}

// TLSEnabled reports whether the agent serves HTTPS.
func (c *Config) TLSEnabled() bool { return c.TLS != nil }

// MinTLSVersion returns min_version as a crypto/tls constant. Call it only
// on a validated config.
func (t *TLSConfig) MinTLSVersion() uint16 {
	if t.MinVersion == TLS13 {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// validateTLS checks the tls block, and refuses plain HTTP on an address
// that other hosts can reach unless insecure_http says so.
func (c *Config) validateTLS(bad func(key, summary, detail string, fallback *hcl.Range)) {
	if c.TLS == nil {
		if !c.InsecureHTTP && checkBind(c.Bind) == nil && !IsLoopbackBind(c.Bind) {
			bad("bind", "Plain HTTP on a network address",
				fmt.Sprintf("%q is reachable from other hosts, and without TLS the tokens that guard every user's secrets would cross the network in clear text. "+
					"Add a tls block with cert_file and key_file (`hush tls cert create -server` makes them), bind to 127.0.0.1, "+
					"or, behind a TLS-terminating proxy, set insecure_http = true (flag -insecure-http).", c.Bind), nil)
		}
		return
	}
	t := c.TLS
	decl := t.DeclRange
	at := func(attr string) string { return "tls." + attr }
	for attr, v := range map[string]string{"cert_file": t.CertFile, "key_file": t.KeyFile} {
		if v == "" {
			bad("", "Missing "+attr, fmt.Sprintf("the tls block needs %s; `hush tls cert create -server` makes a certificate and its key.", attr), &decl)
		}
	}
	for attr, v := range map[string]string{"cert_file": t.CertFile, "key_file": t.KeyFile, "ca_file": t.CAFile} {
		if v != "" && !filepath.IsAbs(v) {
			bad(at(attr), "Invalid "+attr, fmt.Sprintf("%q must be an absolute path.", v), &decl)
		}
	}
	if t.VerifyIncoming && t.CAFile == "" {
		r, ok := c.ranges[at("verify_incoming")]
		if !ok {
			r = decl
		}
		bad("", "Missing ca_file", "verify_incoming needs ca_file: the CA that signs client certificates (`hush tls ca create` makes one).", &r)
	}
	switch t.MinVersion {
	case "", TLS12, TLS13:
	default:
		bad(at("min_version"), "Invalid TLS version", fmt.Sprintf("%q must be %q or %q.", t.MinVersion, TLS12, TLS13), &decl)
	}
	if c.InsecureHTTP {
		bad("insecure_http", "Conflicting settings", "insecure_http allows plain HTTP, but a tls block is set: remove one of them.", &decl)
	}
}

// IsLoopbackBind reports whether a HOST:PORT bind address is reachable
// only from this host. An empty host is every address.
func IsLoopbackBind(bind string) bool {
	host, _, err := net.SplitHostPort(bind)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
