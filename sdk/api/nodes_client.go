package api

import (
	"context"
	"net/http"
	"net/url"
)

// ListNodes lists the nodes of the agent's cluster: those that run
// workloads, ready or down. An agent older than the node registry answers
// 404.
func (c *Client) ListNodes(ctx context.Context) ([]*Node, error) {
	var out ListNodesResponse
	return out.Nodes, c.do(ctx, http.MethodGet, "/v1/nodes", nil, nil, &out)
}

// DrainNode starts or ends draining a node, named by its name or id, and
// returns it as it is afterwards. It needs a management token.
func (c *Client) DrainNode(ctx context.Context, node string, req DrainNodeRequest) (*Node, error) {
	var out Node
	return &out, c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(node)+"/drain", nil, &req, &out)
}
