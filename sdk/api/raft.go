package api

import (
	"context"
	"net/http"
	"net/url"
)

// RaftPeer is one server of a cluster's Raft configuration.
type RaftPeer struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raft_address"`
	APIAddress  string `json:"api_address"`
	Voter       bool   `json:"voter"`
	Leader      bool   `json:"leader"`
	// Healthy says whether the server answered; State, Term and the
	// indexes are its answer.
	Healthy      bool   `json:"healthy"`
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"last_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

// RaftPeers is the servers of a cluster.
type RaftPeers struct {
	Peers []*RaftPeer `json:"peers"`
}

// RaftPeers lists the cluster's servers (management token).
func (c *Client) RaftPeers(ctx context.Context) ([]*RaftPeer, error) {
	var out RaftPeers
	return out.Peers, c.do(ctx, http.MethodGet, "/v1/operator/raft/peers", nil, nil, &out)
}

// RemoveRaftPeer removes server id from the cluster's Raft configuration
// (management token): for a server that is gone for good.
func (c *Client) RemoveRaftPeer(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/operator/raft/peers/"+url.PathEscape(id), nil, nil, nil)
}
