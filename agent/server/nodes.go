package server

import (
	"errors"
	"net/http"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// nodeRoutes serves the cluster's nodes: any token lists them, for people
// to see where their runs can go; a management token drains them.
func (s *Server) nodeRoutes() {
	s.mux.Handle("GET /v1/nodes", s.authed(s.listNodes))
	s.mux.Handle("POST /v1/nodes/{node}/drain", s.authed(s.drainNode))
}

func (s *Server) listNodes(w http.ResponseWriter, _ *http.Request, _ *store.Token) {
	nodes, err := s.store.ListNodes()
	if err != nil {
		s.internalError(w, "list nodes", err)
		return
	}
	out := make([]*api.Node, len(nodes))
	for i, n := range nodes {
		out[i] = apiNode(n)
	}
	writeJSON(w, http.StatusOK, &api.ListNodesResponse{Nodes: out})
}

func (s *Server) drainNode(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if !tok.Management {
		writeError(w, api.CodeForbidden, "nodes are drained with a management token, such as the agent's root token")
		return
	}
	var req api.DrainNodeRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	n, err := s.store.FindNode(r.PathValue("node"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, api.CodeNotFound, err.Error())
		return
	case errors.Is(err, store.ErrInvalid):
		writeError(w, api.CodeInvalid, err.Error())
		return
	case err != nil:
		s.internalError(w, "find node", err)
		return
	}
	if req.Stop {
		// Runs are not placed on nodes yet: each runs where it was
		// submitted, which drain does not stop.
		writeError(w, api.CodeInvalid, "--stop is not supported yet: runs are not placed on nodes; stop them with `hush stop run`")
		return
	}
	if n, err = s.store.DrainNode(n.ID, req.Enable); err != nil {
		if s.clusterError(w, err) {
			return
		}
		s.internalError(w, "drain node", err)
		return
	}
	s.logger.Info("node drain changed", "node", n.Name, "node_id", n.ID, "drain", n.Drain)
	writeJSON(w, http.StatusOK, apiNode(n))
}

func apiNode(n *store.Node) *api.Node {
	return &api.Node{
		ID: n.ID, Name: n.Name, Address: n.Address, Server: n.Server, Status: n.Status, Drain: n.Drain,
		Runtime: n.Runtime, Class: n.Class, Meta: n.Meta, Capacity: n.Capacity, Version: n.Version, LastSeen: n.LastSeen,
	}
}
