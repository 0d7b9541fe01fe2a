package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/cluster"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/nodes"
	"github.com/hush-sh/hush/agent/pki"
	"github.com/hush-sh/hush/agent/runs"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// nodeSetup is what the agent's node part needs.
type nodeSetup struct {
	id string
	// servers is a client agent's line to the servers; nil on a server
	// or a plain agent.
	servers *nodes.RemoteConn
	tlsSrv  *pki.Server
	cfg     *config.Config
	st      *store.Store
	cluster *cluster.Node
	manager *runs.Manager
	runtime string
	scheme  string
	apiAddr net.Addr
	version string
	front   *frontHandler
	logger  hclog.Logger
}

// startNode starts the agent's part in its cluster's nodes:
//   - a client agent registers its node with the servers and heartbeats,
//     runs what they place on it, and serves them the logs of its runs;
//   - a server takes the client agents' registrations and heartbeats,
//     and the leader places runs on nodes and marks silent nodes down;
//   - a server that runs workloads does as a client agent does, through
//     the cluster's state it holds;
//   - a plain agent is a node of its own, which places nothing.
//
// The returned func stops all that.
func startNode(ctx context.Context, s nodeSetup) (func(), error) {
	cfg := s.cfg
	ttl := cfg.NodeTTL()
	self := selfNode(cfg, s.id, s.scheme, s.apiAddr, s.runtime, s.version)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	if s.servers != nil {
		s.front.setNode(nodes.NodeHandler(s.manager, authorizeServers(s.tlsSrv)))
		capacity := func() api.NodeCapacity { return s.manager.Capacity() }
		run(nodes.NewAgent(*self, s.servers, capacity, s.logger).Run)
		exec := &nodes.ClientExecutor{Conn: s.servers, NodeID: s.id, Local: s.st, Runs: s.manager, Logger: s.logger.Named("executor")}
		run(exec.Run)
		return func() { cancel(); wg.Wait() }, nil
	}
	if !cfg.ServerEnabled() {
		// A plain agent is its own one node, and places nothing.
		return func() { cancel(); wg.Wait() }, nil
	}
	leader := func() bool { return s.cluster.State() == "leader" }
	s.front.setNodes(nodes.Handler(s.st, ttl, s.manager, s.cluster.AuthorizeAgent, s.cluster.Barrier, s.logger))
	placer := &nodes.Placer{Store: s.st, TTL: ttl, Leader: leader, Logger: s.logger.Named("placer")}
	run(placer.Run)
	mon := &nodes.Monitor{Store: s.st, TTL: ttl, Leader: leader, Logger: s.logger}
	run(mon.Run)
	if cfg.RunsWorkloads() {
		s.front.setNode(nodes.NodeHandler(s.manager, s.cluster.AuthorizeServer))
		capacity := func() api.NodeCapacity { return s.manager.Capacity() }
		run(nodes.NewAgent(*self, nodes.LocalConn{Store: s.st, TTL: ttl}, capacity, s.logger).Run)
		exec := &nodes.Executor{Store: s.st, NodeID: s.id, Runs: s.manager, Logger: s.logger.Named("executor")}
		run(exec.Run)
	}
	return func() { cancel(); wg.Wait() }, nil
}

// selfNode is the agent's own node as it tells the servers.
func selfNode(cfg *config.Config, id, scheme string, apiAddr net.Addr, runtime, version string) *store.Node {
	address := scheme + "://" + apiAddr.String()
	switch {
	case cfg.ServerEnabled() && cfg.Server.Advertise != "":
		address = scheme + "://" + cfg.Server.Advertise
	case cfg.Client != nil && cfg.Client.Advertise != "":
		address = scheme + "://" + cfg.Client.Advertise
	}
	self := &store.Node{
		ID: id, Name: cfg.NodeName, Address: address, Server: !cfg.ClientOnly(), Runtime: runtime, Version: version,
	}
	if cfg.Client != nil {
		self.Class, self.Meta = cfg.Client.NodeClass, cfg.Client.Meta
	}
	return self
}

// authorizeServers admits, on a client agent, the cluster's servers: a
// server certificate of its CA that is not another node's.
func authorizeServers(tlsSrv *pki.Server) func(*http.Request) error {
	return func(r *http.Request) error {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			return errors.New("a node's internal API is for the cluster's servers: present a server certificate of the cluster CA")
		}
		return cluster.VerifyServer(tlsSrv.PeerConfig().RootCAs, r.TLS.PeerCertificates)
	}
}

// clientAPI serves a client agent's API: its own health, and the servers'
// API for everything else, so that runs on the node, which are given the
// node's agent as HUSH_ADDR, reach the servers.
func clientAPI(own http.Handler, servers *nodes.RemoteConn, logger hclog.Logger) http.Handler {
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "https"
			r.Out.URL.Host = servers.Servers()[0] // chosen again by the transport
			r.SetXForwarded()
		},
		Transport:     &failover{servers: servers.Servers(), base: servers.Transport()},
		FlushInterval: -1, // logs stream
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logger.Warn("could not reach the servers", "path", r.URL.Path, "error", err)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusBadGateway)
			json.NewEncoder(w).Encode(&api.ErrorResponse{Error: "this node's agent could not reach the cluster's servers: " + err.Error(), Code: api.CodeUnavailable})
		},
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/health", own)
	// The servers' internal endpoints would take the node's certificate,
	// which the proxy presents, for the caller's: not for runs.
	mux.HandleFunc("/v1/internal/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(&api.ErrorResponse{Error: "a node's agent does not forward the servers' internal endpoints", Code: api.CodeForbidden})
	})
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Blocking queries and log streams last as long as they do:
		// the servers bound them.
		http.NewResponseController(w).SetWriteDeadline(time.Time{})
		proxy.ServeHTTP(w, r)
	}))
	return mux
}

// failover sends each request to the first server that takes its
// connection, from the last one that did.
type failover struct {
	servers []string
	base    http.RoundTripper
	mu      sync.Mutex
	next    int
}

// maxReplay bounds the body of a request that failover may send to a
// second server: it keeps it in memory meanwhile.
const maxReplay = 4 << 20

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	// The transport closes a body even when it could not connect: the
	// next server is sent a copy.
	var body []byte
	tries := len(f.servers)
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		if body, err = io.ReadAll(io.LimitReader(req.Body, maxReplay+1)); err != nil {
			return nil, err
		}
		if len(body) > maxReplay {
			req.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(body), req.Body), req.Body}
			body, tries = nil, 1
		} else {
			req.Body.Close()
		}
	}
	f.mu.Lock()
	first := f.next
	f.mu.Unlock()
	var errs []error
	for i := range tries {
		n := (first + i) % len(f.servers)
		out := req.Clone(req.Context())
		out.URL.Host, out.Host = f.servers[n], ""
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := f.base.RoundTrip(out)
		if err == nil {
			f.mu.Lock()
			f.next = n
			f.mu.Unlock()
			return resp, nil
		}
		// Only a connection no server took may go to the next: a request
		// sent may have been acted on. The transport reads no body
		// before it has a connection.
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}
