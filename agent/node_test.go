package agent

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/nodes"
)

// A client agent's API forwards runs' calls to the first server that
// answers, and never the servers' internal endpoints, which would take
// the node's certificate for the caller's.
func TestClientAPIForwards(t *testing.T) {
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "server saw "+r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
	}))
	defer upstream.Close()
	// A server that is down: an address nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	tlsConf := upstream.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	conn := nodes.NewRemoteConn([]string{down, strings.TrimPrefix(upstream.URL, "https://")}, tlsConf, strings.Repeat("0", 64))
	own := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "own health") })
	front := httptest.NewServer(clientAPI(own, conn, hclog.NewNullLogger()))
	defer front.Close()

	tests := map[string]struct {
		method, path string
		status       int
		want         string
	}{
		"a run's call":            {"POST", "/v1/runs", 200, "server saw POST /v1/runs Bearer tok"},
		"the node's own health":   {"GET", "/v1/health", 200, "own health"},
		"a node registration":     {"POST", "/v1/internal/nodes/register", 403, "does not forward the servers' internal endpoints"},
		"the servers' Raft apply": {"POST", "/v1/internal/cluster/apply", 403, "does not forward"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, front.URL+tc.path, strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer tok")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("got %d %q, want %d with %q", resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
}
