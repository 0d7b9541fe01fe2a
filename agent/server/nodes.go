package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/hush-sh/hush/agent/nodes"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// nodeRoutes serves the cluster's nodes: any token lists them, for people
// to see where their runs can go; a management token drains them.
func (s *Server) nodeRoutes() {
	s.mux.Handle("GET /v1/nodes", s.authed(s.listNodes))
	s.mux.Handle("POST /v1/nodes/{node}/drain", s.authed(s.drainNode))
}

// SetNode tells the server of the agent's own node. scheduled says
// whether the agent is a server of a cluster, which places runs on the
// nodes it keeps, and gives their free capacity as what the runs placed
// on them leave; a plain agent's one node is its own, told as its run
// manager has it now.
func (s *Server) SetNode(self *store.Node, scheduled bool) {
	s.selfNode, s.scheduled = self, scheduled
}

func (s *Server) listNodes(w http.ResponseWriter, _ *http.Request, _ *store.Token) {
	if !s.scheduled {
		if s.selfNode == nil {
			writeJSON(w, http.StatusOK, &api.ListNodesResponse{Nodes: []*api.Node{}})
			return
		}
		n := apiNode(s.selfNode)
		n.Status, n.Capacity, n.LastSeen = api.NodeReady, s.runs.Capacity(), time.Now().UTC()
		writeJSON(w, http.StatusOK, &api.ListNodesResponse{Nodes: []*api.Node{n}})
		return
	}
	list, err := s.store.ListNodes()
	if err != nil {
		s.internalError(w, "list nodes", err)
		return
	}
	out, err := s.nodesOut(list)
	if err != nil {
		s.internalError(w, "list placements", err)
		return
	}
	writeJSON(w, http.StatusOK, &api.ListNodesResponse{Nodes: out})
}

// nodesOut describes a cluster's nodes as the API shows them: free is what
// the runs placed on each leave.
func (s *Server) nodesOut(list []*store.Node) ([]*api.Node, error) {
	placements, err := s.store.Placements()
	if err != nil {
		return nil, err
	}
	free := nodes.Free(list, placements)
	out := make([]*api.Node, len(list))
	for i, n := range list {
		out[i] = apiNode(n)
		c := &out[i].Capacity
		c.GPUsFree, c.CPUsFree, c.MemoryFreeBytes = free[i].FreeGPUs, float64(free[i].FreeCPUMillis)/1000, free[i].FreeMemoryBytes
		c.ActiveRuns, c.WaitingRuns = 0, 0
		for _, p := range placements {
			if p.Node == n.ID {
				c.ActiveRuns++
			}
		}
	}
	return out, nil
}

func (s *Server) drainNode(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if !tok.Management {
		writeError(w, api.CodeForbidden, "nodes are drained with a management token, such as the agent's root token")
		return
	}
	if !s.scheduled {
		writeError(w, api.CodeInvalid, "nodes are drained in clusters of servers, which place runs on nodes: this agent runs every run itself; stop runs with `hush stop run`")
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
	if n, err = s.store.DrainNode(n.ID, req.Enable); err != nil {
		if s.clusterError(w, err) {
			return
		}
		s.internalError(w, "drain node", err)
		return
	}
	if req.Enable && req.Stop {
		if err := s.stopNodeRuns(n); err != nil {
			if s.clusterError(w, err) {
				return
			}
			s.internalError(w, "stop the node's runs", err)
			return
		}
	}
	s.logger.Info("node drain changed", "node", n.Name, "node_id", n.ID, "drain", n.Drain)
	out, err := s.nodesOut([]*store.Node{n})
	if err != nil {
		s.internalError(w, "list placements", err)
		return
	}
	writeJSON(w, http.StatusOK, out[0])
}

func apiNode(n *store.Node) *api.Node {
	return &api.Node{
		ID: n.ID, Name: n.Name, Address: n.Address, Server: n.Server, Status: n.Status, Drain: n.Drain,
		Runtime: n.Runtime, Class: n.Class, Meta: n.Meta, Capacity: n.Capacity, Version: n.Version, LastSeen: n.LastSeen,
	}
}

// stopNodeRuns asks the node to stop every run placed on it.
func (s *Server) stopNodeRuns(n *store.Node) error {
	placements, err := s.store.Placements()
	if err != nil {
		return err
	}
	for _, p := range placements {
		if p.Node != n.ID {
			continue
		}
		if err := s.store.RequestStop(p.ID, "node "+n.Name+" is drained"); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return nil
}
