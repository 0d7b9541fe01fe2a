package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/hush-sh/hush/agent/cluster"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// Cluster is the server's view of the agent's Raft node.
type Cluster interface {
	// Barrier waits until this server has applied every write that the
	// cluster acknowledged before it was called.
	Barrier(ctx context.Context) error
	Members(ctx context.Context) ([]cluster.MemberStatus, error)
	RemovePeer(ctx context.Context, id string) error
	Status() cluster.NodeStatus
	// SaveSnapshot writes the state's snapshot after a consistent read;
	// RestoreSnapshot makes one every server's state.
	SaveSnapshot(ctx context.Context, w io.Writer) error
	RestoreSnapshot(ctx context.Context, r io.ReadSeeker, size int64) error
}

// SetCluster makes reads consistent across the cluster's servers and
// serves its operator endpoints.
func (s *Server) SetCluster(c Cluster) {
	s.cluster = c
	s.mux.Handle("GET /v1/operator/raft/peers", s.authed(s.operator(s.listPeers)))
	s.mux.Handle("DELETE /v1/operator/raft/peers/{id}", s.authed(s.operator(s.removePeer)))
	s.snapshotRoutes()
}

// readsState reports whether a request reads the store for its answer, and
// must first catch up with the cluster: every GET, and a run's submission,
// which reads the secrets it injects here. Other writes are decided by the
// leader, which applies them to its own state.
func readsState(r *http.Request) bool {
	return r.Method == http.MethodGet || r.Pattern == "POST /v1/runs"
}

// barrierWait bounds how long a read waits to be consistent.
const barrierWait = 10 * time.Second

// consistent waits, before a request reads the store, until this server
// has every write the cluster acknowledged; a GET with ?stale reads what
// this server has. It answers 503 and returns false when it cannot.
func (s *Server) consistent(w http.ResponseWriter, r *http.Request) bool {
	if s.cluster == nil || r.Method == http.MethodGet && r.URL.Query().Has("stale") {
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), barrierWait)
	defer cancel()
	if err := s.cluster.Barrier(ctx); err != nil {
		s.unavailable(w, err)
		return false
	}
	return true
}

// unavailable answers a request that the cluster could not serve: no
// leader, or no quorum.
func (s *Server) unavailable(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", "2")
	msg := err.Error()
	if !errors.Is(err, cluster.ErrNoLeader) && !errors.Is(err, cluster.ErrOutcomeUnknown) {
		msg = "the cluster did not answer in time (" + msg + "); retry in a few seconds"
	}
	writeError(w, api.CodeUnavailable, msg)
}

// clusterError reports whether err is the cluster's, and answers it.
func (s *Server) clusterError(w http.ResponseWriter, err error) bool {
	if errors.Is(err, cluster.ErrNoLeader) || errors.Is(err, cluster.ErrOutcomeUnknown) || errors.Is(err, context.DeadlineExceeded) {
		s.unavailable(w, err)
		return true
	}
	return false
}

func (s *Server) listPeers(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	members, err := s.cluster.Members(r.Context())
	if err != nil {
		s.internalError(w, "list raft peers", err)
		return
	}
	out := &api.RaftPeers{Peers: make([]*api.RaftPeer, len(members))}
	for i, m := range members {
		out.Peers[i] = &api.RaftPeer{
			ID: m.ID, RaftAddress: m.RaftAddr, APIAddress: m.APIAddr, Voter: m.Voter, Leader: m.Leader, Healthy: m.Healthy,
			State: m.Status.State, LastIndex: m.Status.LastIndex, AppliedIndex: m.Status.AppliedIndex, Term: m.Status.Term,
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) removePeer(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	id := r.PathValue("id")
	if err := s.cluster.RemovePeer(r.Context(), id); err != nil {
		if s.clusterError(w, err) {
			return
		}
		writeError(w, api.CodeInvalid, "remove peer "+id+": "+err.Error())
		return
	}
	s.logger.Info("raft peer removed", "id", id, "by", tok.Accessor)
	w.WriteHeader(http.StatusNoContent)
}
