package cluster

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/agent/pki"
)

func TestForeignServerCannotJoin(t *testing.T) {
	ca := newTestCA(t)
	servers := startCluster(t, ca, 3, nil)
	leader := waitLeader(t, servers, 5*time.Second)

	// A server with a certificate of another CA tries to join.
	other := newTestCA(t)
	intruder := newTestServers(t, other, 1)[0]
	intruder.id = "intruder"
	intruder.retryJoin = []string{servers[0].apiAddr, servers[1].apiAddr, servers[2].apiAddr}
	intruder.start(t, 3, nil)

	// Its raft port refuses our servers too, and ours refuse it.
	if _, err := tls.Dial("tcp", leader.raftAddr, intruder.tls); err == nil {
		t.Error("a server certificate of another CA completed a handshake with raft")
	}
	if _, err := tls.Dial("tcp", intruder.raftAddr, leader.tls); err == nil {
		t.Error("the intruder's raft accepted a server of the cluster")
	}

	time.Sleep(2 * time.Second) // ten join rounds
	ms, err := leader.node.Members(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Errorf("got %d members, want 3: %+v", len(ms), ms)
	}
	if _, ok := leader.node.members.get(intruder.id); ok {
		t.Error("the intruder's addresses reached the leader's members map")
	}
	if st := intruder.node.State(); st == "leader" || intruder.node.inCluster() {
		t.Errorf("intruder: got state %s, in cluster %v; want a server that never joined", st, intruder.node.inCluster())
	}
}

func TestInternalAPIRefuses(t *testing.T) {
	ca := newTestCA(t)
	servers := startCluster(t, ca, 1, nil)
	s := servers[0]
	client := ca.cert(t, pki.CertOptions{Client: true})
	server := ca.cert(t, pki.CertOptions{Server: true})
	foreign := newTestCA(t).cert(t, pki.CertOptions{Server: true})
	node := ca.cert(t, pki.CertOptions{Node: true})

	tests := map[string]struct {
		certs      []tls.Certificate
		wantStatus int // 0: the handshake fails
		wantErr    string
	}{
		"no certificate":          {wantStatus: http.StatusForbidden, wantErr: "present a server certificate"},
		"client certificate":      {certs: []tls.Certificate{client}, wantStatus: http.StatusForbidden, wantErr: "must be a server certificate"},
		"another CA's server":     {certs: []tls.Certificate{foreign}},
		"a client agent's node":   {certs: []tls.Certificate{node}, wantStatus: http.StatusForbidden, wantErr: "is a node's"},
		"a server of the cluster": {certs: []tls.Certificate{server}, wantStatus: http.StatusOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, Certificates: tc.certs,
				// The test certificates name 127.0.0.1; the servers listen
				// on addresses of their own in 127.0.0.0/8.
				ServerName: "127.0.0.1"}}}
			defer c.CloseIdleConnections()
			resp, err := c.Get("https://" + s.apiAddr + PathPrefix + "status")
			if tc.wantStatus == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got %s, want a failed handshake", resp.Status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			buf := make([]byte, 4096)
			n, _ := resp.Body.Read(buf)
			b.Write(buf[:n])
			if resp.StatusCode != tc.wantStatus || !strings.Contains(b.String(), tc.wantErr) {
				t.Errorf("got %d %s, want %d with %q", resp.StatusCode, b.String(), tc.wantStatus, tc.wantErr)
			}
		})
	}
}
