// Package cluster is the agent's Raft node: it replicates the store's
// commands between servers with hashicorp/raft, keeps raft's log in
// raft-boltdb and its snapshots in files, forwards writes and consistent
// reads from followers to the leader, and lets servers find and join each
// other. A plain agent runs it as a cluster of one.
package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Defaults for Config.
const (
	DefaultLeaderWait        = 5 * time.Second
	DefaultSnapshotThreshold = 8192
	DefaultSnapshotInterval  = 2 * time.Minute
	DefaultTrailingLogs      = 10240
	DefaultJoinInterval      = 2 * time.Second
)

// Errors of Apply and Barrier; check with errors.Is.
var (
	// ErrNoLeader is returned when no leader was found within the wait:
	// fewer than a quorum of servers are up, or an election is going on.
	ErrNoLeader = errors.New("no cluster leader: an election is under way or fewer than a quorum of servers are reachable (no quorum); retry in a few seconds, and check that a majority of servers run")
	// ErrOutcomeUnknown is returned when the leader was lost after it took
	// a write and before it answered: the write may have been applied.
	ErrOutcomeUnknown = errors.New("leadership was lost while the write was being committed: it may or may not have been applied; read the state before retrying")
)

// Config configures a node.
type Config struct {
	// NodeID names this node in the raft configuration: unique in the
	// cluster and the same across restarts. The first start records it
	// in <DataDir>/raft/node-id; a later start with another fails, since
	// the cluster knows the node by it. Required.
	NodeID string
	// DataDir holds raft's log and stable store (raft/raft.db), its
	// snapshots (raft/snapshots) and the servers' addresses
	// (raft/members.json). Required.
	DataDir string
	// Server makes the node one of several servers; nil runs a cluster
	// of one over an in-memory transport, what a plain agent is.
	Server *ServerConfig
	// LeaderWait bounds how long Apply and Barrier wait for a leader;
	// default DefaultLeaderWait.
	LeaderWait time.Duration
	// SnapshotThreshold is how many log entries since the last snapshot
	// make raft take one, checked every SnapshotInterval; TrailingLogs is
	// how many entries a snapshot leaves in the log for slow followers.
	// Defaults: DefaultSnapshotThreshold, DefaultSnapshotInterval,
	// DefaultTrailingLogs.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
}

// ServerConfig configures a server of a multi-server cluster.
type ServerConfig struct {
	// RaftBind is the host:port raft listens on for other servers.
	RaftBind string
	// RaftAdvertise is the host:port other servers dial for raft; default
	// RaftBind's address, which must then be a specific IP.
	RaftAdvertise string
	// APIAddr is the host:port of this server's HTTPS API as other
	// servers reach it; they forward writes and reads there.
	APIAddr string
	// BootstrapExpect is how many servers form a new cluster: once this
	// many know of each other and none has a cluster yet, they bootstrap
	// it together. Required, at least 1.
	BootstrapExpect int
	// RetryJoin lists other servers' API addresses (host:port), tried
	// until they answer.
	RetryJoin []string
	// TLS is the mutual TLS of raft and of forwarding: this server's
	// certificate (Certificates, or GetCertificate and
	// GetClientCertificate to follow reloads) and the cluster CA in
	// RootCAs. Required.
	TLS *tls.Config
	// JoinInterval is how often servers exchange addresses; default
	// DefaultJoinInterval.
	JoinInterval time.Duration
}

// Node is a raft node replicating commands into an FSM.
type Node struct {
	cfg    Config
	id     raft.ServerID
	logger hclog.Logger
	raft   *raft.Raft
	fsm    *fsmAdapter
	store  *raftboltdb.BoltStore
	trans  raft.Transport

	// Server mode only.
	members  *memberMap
	peerPool *x509.CertPool
	client   *http.Client

	// readyTerm is the term in which this leader's FSM was found to hold
	// every entry committed before it: consistent reads on the leader
	// wait for it.
	readyTerm atomic.Uint64

	observer *raft.Observer
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

// New opens the node's raft state in cfg.DataDir and starts it. A new
// single node bootstraps itself; a new server finds the others through
// RetryJoin.
func New(cfg Config, fsm FSM, logger hclog.Logger) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	logger = logger.Named("cluster")
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	if err := checkNodeID(dir, cfg.NodeID); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, id: raft.ServerID(cfg.NodeID), logger: logger, fsm: newFSMAdapter(fsm), stop: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()

	// A cluster of one keeps its log in memory: its state machine is
	// durable on its own, and no other server will ever need the log, so
	// a write costs one commit to disk, as on an agent before Raft. Each
	// start begins a new log (Config.FreshLog says so to the caller).
	var logs raft.LogStore
	var stable raft.StableStore
	var snaps raft.SnapshotStore
	if cfg.Server == nil {
		fresh, ok := fsm.(FreshLogFSM)
		if !ok {
			return nil, errors.New("a cluster of one needs a state machine that can begin a new log (FreshLogFSM)")
		}
		if err := fresh.ForgetAppliedIndex(); err != nil {
			return nil, err
		}
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewDiscardSnapshotStore()
		n.fsm.durable = true
	} else {
		store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
		if err != nil {
			return nil, fmt.Errorf("open raft log %s: %w", filepath.Join(dir, "raft.db"), err)
		}
		n.store = store
		logs, stable = store, store
		if snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, logger.Named("snapshots")); err != nil {
			return nil, fmt.Errorf("open raft snapshots: %w", err)
		}
	}

	rc := raft.DefaultConfig()
	rc.LocalID = n.id
	rc.Logger = logger.Named("raft")
	// The FSM persists on its own; raft replays only the log after the
	// last snapshot, which the FSM skips up to its AppliedIndex.
	rc.NoSnapshotRestoreOnStart = true
	// Concurrent writes go to the log together, as they go to the store
	// together.
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs

	var self raft.ServerAddress
	if cfg.Server == nil {
		// Alone, the node needs no time to hear from others: it elects
		// itself at once instead of after raft's one-second timeouts.
		rc.HeartbeatTimeout = 50 * time.Millisecond
		rc.ElectionTimeout = 50 * time.Millisecond
		rc.LeaderLeaseTimeout = 50 * time.Millisecond
		self, n.trans = raft.NewInmemTransport(raft.ServerAddress("local"))
	} else {
		var err error
		if self, err = n.setupServer(); err != nil {
			return nil, err
		}
	}

	hasState, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return nil, fmt.Errorf("read raft state: %w", err)
	}
	var rfsm raft.FSM = n.fsm
	if b, ok := fsm.(BatchFSM); ok {
		rfsm = &batchAdapter{fsmAdapter: n.fsm, batch: b}
	}
	if n.raft, err = raft.NewRaft(rc, rfsm, logs, stable, snaps, n.trans); err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	ok = true
	if cfg.Server == nil && !hasState {
		conf := raft.Configuration{Servers: []raft.Server{{ID: n.id, Address: self}}}
		if err := n.raft.BootstrapCluster(conf).Error(); err != nil {
			n.Shutdown()
			return nil, fmt.Errorf("bootstrap single-node cluster: %w", err)
		}
		logger.Info("bootstrapped a single-node cluster", "node_id", cfg.NodeID)
	}
	n.watchLeadership()
	if cfg.Server != nil {
		n.wg.Add(1)
		go n.joinLoop()
	}
	return n, nil
}

func (c *Config) validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("node id is empty: give each server a unique name"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is empty"))
	}
	if s := c.Server; s != nil {
		if s.RaftBind == "" {
			errs = append(errs, errors.New("server mode needs raft_bind: the host:port raft listens on"))
		}
		if s.APIAddr == "" {
			errs = append(errs, errors.New("server mode needs this server's API address, which other servers forward to"))
		}
		if s.BootstrapExpect < 1 {
			errs = append(errs, fmt.Errorf("bootstrap_expect must be at least 1, got %d", s.BootstrapExpect))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configure cluster node: %w", err)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.LeaderWait <= 0 {
		c.LeaderWait = DefaultLeaderWait
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if s := c.Server; s != nil && s.JoinInterval <= 0 {
		s.JoinInterval = DefaultJoinInterval
	}
}

// checkNodeID records id on the first start and refuses another later.
func checkNodeID(dir, id string) error {
	path := filepath.Join(dir, "node-id")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
			return fmt.Errorf("record node id: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read node id: %w", err)
	}
	if old := strings.TrimSpace(string(b)); old != id {
		return fmt.Errorf("node id %q differs from %q, which this data dir's raft state was made with: the cluster knows this node by the old one; set the node name back to %q", id, old, old)
	}
	return nil
}

// Shutdown stops the node and closes its files, handing its leadership
// over first (TransferLeadership). It is safe to call twice.
func (n *Node) Shutdown() error {
	var err error
	n.once.Do(func() {
		if e := n.TransferLeadership(); e != nil {
			// The others elect a leader once their election timeout ends.
			n.logger.Warn("could not hand leadership over before shutting down", "error", e)
		}
		close(n.stop)
		n.wg.Wait()
		if n.observer != nil {
			n.raft.DeregisterObserver(n.observer)
		}
		if e := n.raft.Shutdown().Error(); e != nil {
			err = fmt.Errorf("shut down raft: %w", e)
		}
		if n.client != nil {
			n.client.CloseIdleConnections()
		}
		err = errors.Join(err, n.closeStores())
	})
	return err
}

func (n *Node) closeStores() error {
	var errs []error
	if c, ok := n.trans.(interface{ Close() error }); ok {
		errs = append(errs, c.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close raft stores: %w", err)
	}
	return nil
}
