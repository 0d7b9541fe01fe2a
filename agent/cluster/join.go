package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// How servers find each other. Every JoinInterval each server posts to the
// join endpoint of every server it knows of (RetryJoin, and the members
// map) its own addresses, the members it knows, and whether it is in a
// cluster yet; the answer carries the other side's members and the same
// flag. So the members map (ID → raft and API addresses) spreads to every
// server, which is how a follower finds its leader's API to forward to.
//
//   - While no server known is in a cluster, and at least BootstrapExpect
//     are known, each bootstraps raft with the same sorted list of all the
//     servers it knows (raft's BootstrapCluster is safe to call on every
//     server with the same configuration).
//   - A server not yet in the cluster that learns of one that is does not
//     bootstrap: the leader, on its join request, adds it as a voter.

// joinRequest is what a server sends to the join endpoint.
type joinRequest struct {
	From     Member   `json:"from"`
	Known    []Member `json:"known"`
	HasState bool     `json:"has_state"`
}

// joinResponse is the answer.
type joinResponse struct {
	Known    []Member `json:"known"`
	HasState bool     `json:"has_state"`
	LeaderID string   `json:"leader_id"`
}

// setupServer makes the TLS transport and the members map, and returns
// this server's raft address.
func (n *Node) setupServer() (raft.ServerAddress, error) {
	s := n.cfg.Server
	serverTLS, clientTLS, err := tlsConfigs(s.TLS)
	if err != nil {
		return "", err
	}
	n.peerPool = s.TLS.RootCAs
	stream, err := newTLSStream(s.RaftBind, s.RaftAdvertise, serverTLS, clientTLS)
	if err != nil {
		return "", err
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  n.logger.Named("transport"),
	})
	if n.members, err = loadMembers(filepath.Join(n.cfg.DataDir, "raft", "members.json"), string(n.id)); err != nil {
		return "", err
	}
	self := Member{ID: string(n.id), RaftAddr: stream.Addr().String(), APIAddr: s.APIAddr, Seq: time.Now().UnixNano()}
	if err := n.members.setSelf(self); err != nil {
		return "", err
	}
	n.client = &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:     clientTLS,
			TLSHandshakeTimeout: 5 * time.Second,
			// Forwarded writes from many API requests at once reuse
			// connections instead of paying a handshake each.
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     time.Minute,
		},
		Timeout: 30 * time.Second,
	}
	return raft.ServerAddress(self.RaftAddr), nil
}

// joinLoop exchanges members with the other servers and bootstraps or
// joins the cluster.
func (n *Node) joinLoop() {
	defer n.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.exchange()
		t.Reset(n.cfg.Server.JoinInterval)
	}
}

// exchange runs one round of the join protocol.
func (n *Node) exchange() {
	inCluster := n.inCluster()
	self := n.self()
	req := joinRequest{From: self, Known: n.members.list(), HasState: inCluster}
	var targets []string
	for _, a := range n.cfg.Server.RetryJoin {
		if a != self.APIAddr && !slices.Contains(targets, a) {
			targets = append(targets, a)
		}
	}
	for _, m := range req.Known {
		if m.ID != self.ID && !slices.Contains(targets, m.APIAddr) {
			targets = append(targets, m.APIAddr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(n.cfg.Server.JoinInterval, 2*time.Second))
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var mu sync.Mutex
	othersInCluster := false
	var wg sync.WaitGroup
	for _, addr := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp joinResponse
			if err := n.call(ctx, addr, "join", req, &resp); err != nil {
				if inCluster {
					n.logger.Debug("exchange members", "addr", addr, "error", err)
				} else {
					n.logger.Warn("join: server did not answer; retrying", "addr", addr, "error", err)
				}
				return
			}
			if _, err := n.members.merge(resp.Known...); err != nil {
				n.logger.Error("save members", "error", err)
			}
			mu.Lock()
			othersInCluster = othersInCluster || resp.HasState
			mu.Unlock()
		}()
	}
	wg.Wait()
	if inCluster || othersInCluster {
		return
	}
	known := n.members.list()
	if len(known) < n.cfg.Server.BootstrapExpect {
		n.logger.Info("waiting for servers to bootstrap the cluster", "known", len(known), "bootstrap_expect", n.cfg.Server.BootstrapExpect)
		return
	}
	n.bootstrap(known)
}

// bootstrap makes the cluster out of known, already sorted by ID.
func (n *Node) bootstrap(known []Member) {
	conf := raft.Configuration{}
	ids := make([]string, 0, len(known))
	for _, m := range known {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr)})
		ids = append(ids, m.ID)
	}
	err := n.raft.BootstrapCluster(conf).Error()
	switch {
	case errors.Is(err, raft.ErrCantBootstrap):
		// Raft state arrived from a peer meanwhile.
	case err != nil:
		n.logger.Error("bootstrap the cluster", "error", err)
	default:
		n.logger.Info("bootstrapped the cluster", "servers", ids)
	}
}

// inCluster tells whether raft has a configuration: bootstrapped here,
// or received from a leader.
func (n *Node) inCluster() bool {
	f := n.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

func (n *Node) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err)
		return
	}
	if req.From.ID == "" || req.From.RaftAddr == "" || req.From.APIAddr == "" {
		writeError(w, http.StatusBadRequest, codeBadRequest, errors.New("join: the request names no server"))
		return
	}
	if _, err := n.members.merge(append(req.Known, req.From)...); err != nil {
		n.logger.Error("save members", "error", err)
	}
	if n.raft.State() == raft.Leader {
		if err := n.addVoter(req.From); err != nil {
			writeApplyError(w, err)
			return
		}
	}
	_, leader := n.raft.LeaderWithID()
	writeJSON(w, http.StatusOK, joinResponse{Known: n.members.list(), HasState: n.inCluster(), LeaderID: string(leader)})
}

// addVoter adds m to the raft configuration unless it is there already.
func (n *Node) addVoter(m Member) error {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(m.ID) && s.Address == raft.ServerAddress(m.RaftAddr) {
			return nil
		}
	}
	if err := n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, 5*time.Second).Error(); err != nil {
		return fmt.Errorf("%w: add voter %s: %w", errRetry, m.ID, err)
	}
	n.logger.Info("added server to the cluster", "server_id", m.ID, "raft_addr", m.RaftAddr)
	return nil
}
