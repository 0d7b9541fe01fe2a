package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hush-sh/hush/agent/pki"
)

// testCA is a cluster CA that issues server certificates.
type testCA struct {
	pem  *pki.PEM
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	p, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.Cert)
	return &testCA{pem: p, pool: pool}
}

func (ca *testCA) cert(t testing.TB, opts pki.CertOptions) tls.Certificate {
	t.Helper()
	p, err := pki.NewCert(ca.pem, opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsConfig is a server's cluster TLS: its certificate, the CA as roots.
func (ca *testCA) tlsConfig(t testing.TB) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.cert(t, pki.CertOptions{Server: true})}, RootCAs: ca.pool}
}

// testServer is one server: a node, its FSM, and an HTTPS API that serves
// the node's internal endpoints as the agent does, verifying client
// certificates of the CA when given.
type testServer struct {
	id, dir           string
	raftAddr, apiAddr string
	tls               *tls.Config
	retryJoin         []string
	node              *Node
	fsm               *testFSM
	handler           atomic.Pointer[http.Handler]
	http              *http.Server
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	// An address of its own in 127.0.0.0/8: a port taken from 127.0.0.1
	// can be in use again, as the local end of some outgoing connection,
	// by the time the server binds it.
	ip := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(256), 1+rand.IntN(250))
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newTestServers makes n servers that retry_join each other. They are
// not started.
func newTestServers(t testing.TB, ca *testCA, n int) []*testServer {
	var servers []*testServer
	var apis []string
	for i := range n {
		s := &testServer{id: fmt.Sprintf("s%d", i+1), dir: t.TempDir(), raftAddr: freeAddr(t), apiAddr: freeAddr(t), tls: ca.tlsConfig(t)}
		servers = append(servers, s)
		apis = append(apis, s.apiAddr)
	}
	for _, s := range servers {
		s.retryJoin = apis
	}
	return servers
}

func (s *testServer) start(t testing.TB, expect int, tweak func(*Config)) {
	t.Helper()
	ln, err := net.Listen("tcp", s.apiAddr)
	if err != nil {
		t.Fatal(err)
	}
	apiTLS := s.tls.Clone()
	apiTLS.ClientCAs = s.tls.RootCAs
	apiTLS.ClientAuth = tls.VerifyClientCertIfGiven
	s.http = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := s.handler.Load()
			if h == nil {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			(*h).ServeHTTP(w, r)
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go s.http.Serve(tls.NewListener(ln, apiTLS))
	s.fsm = newTestFSM(t, s.dir)
	cfg := Config{NodeID: s.id, DataDir: s.dir, Server: &ServerConfig{
		RaftBind: s.raftAddr, APIAddr: s.apiAddr, BootstrapExpect: expect,
		RetryJoin: s.retryJoin, TLS: s.tls, JoinInterval: 200 * time.Millisecond,
	}}
	if tweak != nil {
		tweak(&cfg)
	}
	s.node, err = New(cfg, s.fsm, testLogger(t))
	if err != nil {
		s.http.Close()
		t.Fatal(err)
	}
	h := s.node.Handler()
	s.handler.Store(&h)
	t.Cleanup(s.stop)
}

func (s *testServer) stop() {
	if s.node != nil {
		s.node.Shutdown()
	}
	if s.http != nil {
		s.http.Close()
	}
}

// waitLeader waits until every live server agrees on one leader, and
// returns it.
func waitLeader(t testing.TB, servers []*testServer, within time.Duration) *testServer {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var leader *testServer
		agree := true
		for _, s := range servers {
			m, ok := s.node.Leader()
			if !ok {
				agree = false
				break
			}
			for _, c := range servers {
				if c.id == m.ID {
					if leader != nil && leader != c {
						agree = false
					}
					leader = c
				}
			}
		}
		if agree && leader != nil && leader.node.State() == "leader" {
			return leader
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no leader agreed on within %s", within)
	return nil
}

func startCluster(t testing.TB, ca *testCA, n int, tweak func(*Config)) []*testServer {
	t.Helper()
	servers := newTestServers(t, ca, n)
	for _, s := range servers {
		s.start(t, n, tweak)
	}
	waitLeader(t, servers, 15*time.Second)
	return servers
}

func followers(servers []*testServer, leader *testServer) []*testServer {
	var out []*testServer
	for _, s := range servers {
		if s != leader {
			out = append(out, s)
		}
	}
	return out
}

func TestClusterForwardAndFailover(t *testing.T) {
	ca := newTestCA(t)
	servers := startCluster(t, ca, 3, nil)
	leader := waitLeader(t, servers, 5*time.Second)
	f := followers(servers, leader)

	// A write on a follower goes to the leader and comes back with the
	// FSM's result; a read on the other follower after a Barrier sees it.
	if got := mustApply(t, f[0].node, "set a 1"); got != "ok" {
		t.Fatalf("got %q, want ok", got)
	}
	if got := mustApply(t, f[0].node, "del missing"); got != "error: no such key missing" {
		t.Errorf("got %q, want the FSM's error from the leader", got)
	}
	for i := range 20 {
		mustApply(t, leader.node, fmt.Sprintf("set k%d %d", i, i))
		if err := f[1].node.Barrier(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got, _ := f[1].fsm.get(fmt.Sprintf("k%d", i)); got != fmt.Sprint(i) {
			t.Fatalf("follower read after barrier: got %q, want %d", got, i)
		}
	}
	ms, err := f[0].node.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("got %d members, want 3: %+v", len(ms), ms)
	}
	for _, m := range ms {
		if !m.Healthy || !m.Voter || m.APIAddr == "" || (m.Leader != (m.ID == leader.id)) || m.Status.ID != m.ID {
			t.Errorf("got member %+v, want healthy voter with its API address, leader %s", m, leader.id)
		}
	}

	// Kill the leader: the others elect a new one within 5 s, and
	// writes resume on both, the follower's forwarded.
	leader.stop()
	start := time.Now()
	newLeader := waitLeader(t, f, 5*time.Second)
	t.Logf("new leader %s after %s", newLeader.id, time.Since(start))
	for _, s := range f {
		if got := mustApply(t, s.node, "set after-"+s.id+" x"); got != "ok" {
			t.Errorf("write on %s after failover: got %q, want ok", s.id, got)
		}
	}
	for _, s := range f {
		if err := s.node.Barrier(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"a", "k19", "after-" + f[0].id, "after-" + f[1].id} {
			if _, ok := s.fsm.get(k); !ok {
				t.Errorf("%s lacks %s after failover", s.id, k)
			}
		}
	}

	// The dead server goes, through a follower that forwards to the
	// leader; a name that is no server is refused.
	follower := followers(f, newLeader)[0]
	if err := follower.node.RemovePeer(t.Context(), leader.id); err != nil {
		t.Fatalf("remove peer: %v", err)
	}
	if err := follower.node.RemovePeer(t.Context(), "nobody"); err == nil || !strings.Contains(err.Error(), "no such server") {
		t.Errorf("remove unknown peer: got %v, want no such server", err)
	}
	if ms, err := newLeader.node.Members(t.Context()); err != nil || len(ms) != 2 {
		t.Errorf("got members %+v, %v after removing %s, want 2", ms, err, leader.id)
	}

	// Without a quorum, writes fail with ErrNoLeader once the wait ends.
	newLeader.stop()
	other := followers(f, newLeader)[0]
	// A write in flight as the leader dies may or may not be applied
	// (ErrOutcomeUnknown); once the follower has seen the leader go, a
	// write fails cleanly. The stopping leader hands its leadership over
	// first, so the last server may lead for a moment, without a quorum,
	// until its lease runs out: it must see no leader twice, a lease
	// apart.
	noLeader := func() bool { _, ok := other.node.Leader(); return !ok && other.node.State() != "leader" }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if noLeader() {
			time.Sleep(time.Second)
			if noLeader() {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the last server still sees a leader 10 s after the others stopped")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = other.node.Apply(ctx, []byte("set lost 1"))
	if !errors.Is(err, ErrNoLeader) {
		t.Errorf("got %v, want ErrNoLeader", err)
	}
}

// A leader that shuts down hands its leadership over first: the others
// have a leader again well within raft's one-second heartbeat timeout,
// which is how long they would wait to notice a leader that just died.
func TestShutdownTransfersLeadership(t *testing.T) {
	ca := newTestCA(t)
	servers := startCluster(t, ca, 3, nil)
	leader := waitLeader(t, servers, 5*time.Second)
	f := followers(servers, leader)
	mustApply(t, f[0].node, "set before 1")

	start := time.Now()
	leader.stop()
	newLeader := waitLeader(t, f, 900*time.Millisecond)
	t.Logf("%s leads %s after %s began shutting down", newLeader.id, time.Since(start).Round(time.Millisecond), leader.id)
	if got := mustApply(t, f[1].node, "set after 1"); got != "ok" {
		t.Errorf("write after the handover: got %q, want ok", got)
	}
	if _, ok := newLeader.fsm.get("before"); !ok {
		t.Error("the new leader lacks a write acknowledged before the handover")
	}
	// On a follower, and a second time, it does nothing.
	if err := f[0].node.TransferLeadership(); err != nil && newLeader != f[0] {
		t.Errorf("transfer on a follower: got %v, want nil", err)
	}
}
