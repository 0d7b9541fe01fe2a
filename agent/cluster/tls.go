package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hush-sh/hush/agent/pki"
)

// Servers accept each other by certificate: a peer must present a chain to
// the cluster CA whose leaf may act as a server (ExtKeyUsageServerAuth).
// That keeps out the CLI's client certificates and runs' certificates,
// which the agent's API also trusts, and needs no host names in
// certificates: like Consul without verify_server_hostname, any server
// certificate of the cluster CA is a server of the cluster.

// tlsConfigs derives the server and client sides of servers' mutual TLS
// from the caller's config.
func tlsConfigs(base *tls.Config) (server, client *tls.Config, err error) {
	if base == nil {
		return nil, nil, errors.New("server mode needs TLS: servers speak mutual TLS to each other; add a tls block with cert_file, key_file and ca_file")
	}
	if base.RootCAs == nil {
		return nil, nil, errors.New("server TLS needs the cluster CA in RootCAs: it is what a peer's certificate is checked against")
	}
	if len(base.Certificates) == 0 && (base.GetCertificate == nil || base.GetClientCertificate == nil) {
		return nil, nil, errors.New("server TLS needs this server's certificate: set Certificates, or GetCertificate and GetClientCertificate")
	}
	pool := base.RootCAs
	verify := func(cs tls.ConnectionState) error { return VerifyServer(pool, cs.PeerCertificates) }

	server = base.Clone()
	// A per-client config would replace the client authentication below.
	server.GetConfigForClient = nil
	server.ClientAuth = tls.RequireAndVerifyClientCert
	if server.ClientCAs == nil {
		server.ClientCAs = pool
	}
	server.VerifyConnection = verify
	if server.MinVersion == 0 {
		server.MinVersion = tls.VersionTLS12
	}

	client = base.Clone()
	// The chain is checked by verify rather than against a host name:
	// servers are reached by IP and their certificates need not name it.
	client.InsecureSkipVerify = true
	client.VerifyConnection = verify
	if client.MinVersion == 0 {
		client.MinVersion = tls.VersionTLS12
	}
	if client.GetClientCertificate == nil && len(client.Certificates) > 0 {
		cert := client.Certificates[0]
		client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return server, client, nil
}

// VerifyServer checks that certs are a server's of the cluster: a server
// certificate of the CA that is not a node's (pki.IsNode), which a client
// agent holds.
func VerifyServer(pool *x509.CertPool, certs []*x509.Certificate) error {
	if err := VerifyServerPeer(pool, certs); err != nil {
		return err
	}
	if pki.IsNode(certs[0]) {
		return fmt.Errorf("peer certificate %q is a node's (a client agent's): it does not make its holder a server of the cluster", certs[0].Subject.CommonName)
	}
	return nil
}

// VerifyServerPeer checks that certs, as a peer presented them, chain to a
// CA of pool and that the leaf is a server's or a node's: an agent's.
func VerifyServerPeer(pool *x509.CertPool, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("the peer presented no certificate: servers must present their server certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("verify peer certificate %q: it must be a server certificate of the cluster CA: %w", certs[0].Subject.CommonName, err)
	}
	return nil
}

// tlsStream is raft's stream layer over mutual TLS.
type tlsStream struct {
	net.Listener
	advertise net.Addr
	client    *tls.Config
}

var _ raft.StreamLayer = (*tlsStream)(nil)

// newTLSStream listens on bind. advertise is the address peers dial; empty
// means the listener's own, which must then be a specific IP.
func newTLSStream(bind, advertise string, server, client *tls.Config) (*tlsStream, error) {
	var adv net.Addr
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			return nil, fmt.Errorf("resolve raft advertise address %q: %w", advertise, err)
		}
		adv = a
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen on raft_bind %q: %w", bind, err)
	}
	if adv == nil {
		a := ln.Addr().(*net.TCPAddr)
		if a.IP.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("raft_bind %q listens on every address: set the raft advertise address that other servers dial", bind)
		}
		adv = a
	}
	return &tlsStream{Listener: tls.NewListener(ln, server), advertise: adv, client: client}, nil
}

// Dial connects to a peer and completes the handshake, so that a peer
// with a bad certificate fails here and not on raft's first read.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", string(address), s.client)
	if err != nil {
		return nil, fmt.Errorf("dial raft peer %s: %w", address, err)
	}
	return conn, nil
}

// Addr is the address peers dial.
func (s *tlsStream) Addr() net.Addr { return s.advertise }
