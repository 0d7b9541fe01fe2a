package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/cluster"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/nodes"
	"github.com/hush-sh/hush/agent/pki"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// singleNodeID is the Raft id of an agent that is a cluster of its own:
// no other server knows it, so it need not follow the node's name.
const singleNodeID = "local"

// clusterReadyWait bounds how long a starting agent waits to be in its
// cluster: servers wait for the others of bootstrap_expect.
const clusterReadyWait = 10 * time.Minute

// clusterCatchUpWait bounds how long a starting server waits to catch up
// with the cluster's writes before it takes over its node's runs.
const clusterCatchUpWait = 30 * time.Second

// startCluster starts the agent's Raft node over st: a cluster of one for
// a plain agent, or a server of several, whose node replicates the
// store's writes from then on.
func startCluster(cfg *config.Config, dataDir string, st *store.Store, tlsSrv *pki.Server, apiAddr string, logger hclog.Logger) (*cluster.Node, error) {
	cc := cluster.Config{NodeID: singleNodeID, DataDir: dataDir}
	if cfg.ServerEnabled() {
		expect := cfg.Server.BootstrapExpect
		if expect == 0 {
			expect = 1
		}
		cc.NodeID = cfg.NodeName
		if cfg.Server.Advertise != "" {
			apiAddr = cfg.Server.Advertise
		}
		cc.Server = &cluster.ServerConfig{
			RaftBind: cfg.RaftBindAddr(), RaftAdvertise: cfg.Server.RaftAdvertise, APIAddr: apiAddr, BootstrapExpect: expect,
			RetryJoin: cfg.Server.RetryJoin, TLS: tlsSrv.PeerConfig(),
		}
	}
	if cfg.ServerEnabled() && st.HoldsData() {
		// Data that no log holds would stay on this server alone: a plain
		// agent's data dir, or a server's whose log is gone.
		if _, err := os.Stat(filepath.Join(dataDir, "raft", "raft.db")); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("the data dir %s holds secrets, tokens or runs, but no server's Raft log (raft/raft.db): it is a plain agent's, "+
				"or its log is gone. Start the server on an empty data dir, and `hush operator snapshot restore` a snapshot of this one into the cluster",
				dataDir)
		}
	}
	node, err := cluster.New(cc, storeFSM{st}, logger)
	if err != nil {
		return nil, err
	}
	if cfg.ServerEnabled() {
		st.SetReplicator(node)
	}
	// A cluster of one is its own leader and has no log to share: it
	// applies its commands to its store as they come, in the groups its
	// committer makes, through the same code that applies a log.
	return node, nil
}

// waitClusterKeyring waits until the store has the cluster's keyring, so
// that the agent writes nothing under keys of its own: at once for a
// cluster of one, once the servers have formed their cluster for a
// server. The leader puts its own keyring in the log when the log has
// none.
func waitClusterKeyring(ctx context.Context, node *cluster.Node, st *store.Store, logger hclog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, clusterReadyWait)
	defer cancel()
	said := time.Now()
	// A cluster of one elects itself at once; its writes wait for that.
	for !st.HasClusterKeyring() || node.Status().LeaderID == "" {
		if node.State() == "leader" {
			if err := st.EnsureClusterKeyring(); err != nil && !errors.Is(err, cluster.ErrNoLeader) {
				return fmt.Errorf("share the keyring with the cluster: %w", err)
			}
			continue
		}
		if time.Since(said) > 10*time.Second {
			logger.Info("waiting to join the cluster: for bootstrap_expect servers, or for the leader", "state", node.State())
			said = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the agent did not join its cluster within %s: check that the servers of retry_join run and reach each other: %w", clusterReadyWait, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// frontHandler serves the servers' internal endpoints from the start, so
// that servers can form their cluster before the agent is ready, and the
// API once it is.
type frontHandler struct {
	cluster atomic.Pointer[http.Handler]
	nodes   atomic.Pointer[http.Handler]
	node    atomic.Pointer[http.Handler]
	api     atomic.Pointer[http.Handler]
}

func (f *frontHandler) setCluster(h http.Handler) { f.cluster.Store(&h) }
func (f *frontHandler) setNodes(h http.Handler)   { f.nodes.Store(&h) }
func (f *frontHandler) setNode(h http.Handler)    { f.node.Store(&h) }
func (f *frontHandler) setAPI(h http.Handler)     { f.api.Store(&h) }

func (f *frontHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, cluster.PathPrefix) {
		if h := f.cluster.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
	} else if strings.HasPrefix(r.URL.Path, nodes.PathPrefix) {
		if h := f.nodes.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
	} else if strings.HasPrefix(r.URL.Path, nodes.NodePathPrefix) {
		if h := f.node.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
	} else if h := f.api.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Retry-After", "2")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintf(w, `{"error":"the agent is starting: it serves once it is in its cluster; retry in a few seconds","code":%q}`+"\n", api.CodeUnavailable)
}

// storeFSM is the store as the Raft node's state machine, applying what
// raft commits together in one transaction.
type storeFSM struct{ *store.Store }

func (s storeFSM) ApplyBatch(idx []uint64, cmds [][]byte) [][]byte {
	entries := make([]store.Entry, len(idx))
	for i := range idx {
		entries[i] = store.Entry{Index: idx[i], Cmd: cmds[i]}
	}
	return s.Store.ApplyBatch(entries)
}
