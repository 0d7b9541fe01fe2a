package nodes

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/hush-sh/hush/agent/runs"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// RemoteConn is a client agent's line to the servers: HTTPS with its agent
// certificate, to one server at a time, moving on to the next when one
// does not answer or cannot write.
type RemoteConn struct {
	servers []string
	client  *http.Client
	// secret is the node's, which it proves it is with.
	secret string

	mu   sync.Mutex
	next int // the server to try first
}

// requestTimeout bounds one call to one server, but for blocking queries,
// which add how long they wait.
const requestTimeout = 10 * time.Second

// ErrNotPlaced is returned for a run that the servers no longer have on
// this node in this attempt.
var ErrNotPlaced = errors.New("the servers no longer have the run on this node")

// NewRemoteConn returns a conn to the servers at the API addresses
// servers ("host:port"), over tlsConf, for the node of secret.
func NewRemoteConn(servers []string, tlsConf *tls.Config, secret string) *RemoteConn {
	return &RemoteConn{
		servers: servers,
		secret:  secret,
		client: &http.Client{
			Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true, IdleConnTimeout: time.Minute},
		},
	}
}

// Servers returns the servers' addresses.
func (c *RemoteConn) Servers() []string { return c.servers }

// Transport returns the conn's transport, for requests it forwards.
func (c *RemoteConn) Transport() http.RoundTripper { return c.client.Transport }

// Register records n with the servers.
func (c *RemoteConn) Register(ctx context.Context, n *store.Node) (*Registration, error) {
	req := &RegisterRequest{ID: n.ID, Name: n.Name, Address: n.Address, Runtime: n.Runtime, Class: n.Class, Meta: n.Meta,
		Version: n.Version, Capacity: n.Capacity}
	var reg Registration
	if err := c.call(ctx, http.MethodPost, "register", req, &reg, 0); err != nil {
		return nil, err
	}
	if reg.HeartbeatInterval <= 0 {
		return nil, errors.New("register node: the server gave no heartbeat interval")
	}
	return &reg, nil
}

// Heartbeat tells the servers that node id is up.
func (c *RemoteConn) Heartbeat(ctx context.Context, id string, capacity api.NodeCapacity) error {
	return c.call(ctx, http.MethodPost, id+"/heartbeat", capacity, nil, 0)
}

// Assignments returns the runs placed on node id once they differ from
// those hash names, or after wait.
func (c *RemoteConn) Assignments(ctx context.Context, id, hash string, wait time.Duration) (*AssignmentList, error) {
	var list AssignmentList
	op := fmt.Sprintf("%s/runs?hash=%s&wait=%s", id, url.QueryEscape(hash), wait)
	if err := c.call(ctx, http.MethodGet, op, nil, &list, wait); err != nil {
		return nil, err
	}
	return &list, nil
}

// Report sends the servers node id's record of a run placed on it.
func (c *RemoteConn) Report(ctx context.Context, id string, run *store.Run) error {
	return c.call(ctx, http.MethodPost, runOp(id, run, "report"), &Report{Run: toWire(run)}, nil, 0)
}

// Grants returns the servers as where node id's runs get their secrets
// and tokens.
func (c *RemoteConn) Grants(id string) runs.Grants { return &remoteGrants{conn: c, node: id} }

type remoteGrants struct {
	conn *RemoteConn
	node string
	// attempts holds the attempt of each run granted, for its revoke.
	attempts sync.Map
}

func (g *remoteGrants) Grant(ctx context.Context, run *store.Run) (*runs.Grant, error) {
	var out runs.Grant
	if err := g.conn.call(ctx, http.MethodPost, runOp(g.node, run, "grant"), struct{}{}, &out, 0); err != nil {
		return nil, fmt.Errorf("get the run's secrets from the servers: %w", err)
	}
	g.attempts.Store(run.ID, run.Attempt)
	return &out, nil
}

func (g *remoteGrants) Refresh(ctx context.Context, run *store.Run, names []string) (*runs.Refreshed, error) {
	var out runs.Refreshed
	if err := g.conn.call(ctx, http.MethodPost, runOp(g.node, run, "refresh"), &RefreshRequest{Names: names}, &out, 0); err != nil {
		return nil, fmt.Errorf("get the run's secrets again from the servers: %w", err)
	}
	return &out, nil
}

func (g *remoteGrants) Revoke(runID string) error {
	attempt, _ := g.attempts.LoadAndDelete(runID)
	run := &store.Run{ID: runID}
	if a, ok := attempt.(int); ok {
		run.Attempt = a
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	return g.conn.call(ctx, http.MethodPost, runOp(g.node, run, "revoke"), struct{}{}, nil, 0)
}

func runOp(node string, run *store.Run, what string) string {
	return node + "/runs/" + url.PathEscape(run.ID) + "/" + what + "?attempt=" + strconv.Itoa(run.Attempt)
}

// call sends req (nil for a GET) to each server in turn, from the last one
// that answered, until one does. wait is how long the server may hold a
// blocking query.
func (c *RemoteConn) call(ctx context.Context, method, op string, req, out any, wait time.Duration) error {
	var body []byte
	if req != nil {
		var err error
		if body, err = json.Marshal(req); err != nil {
			return fmt.Errorf("encode %s: %w", op, err)
		}
	}
	c.mu.Lock()
	first := c.next
	c.mu.Unlock()
	var errs []error
	for i := range c.servers {
		n := (first + i) % len(c.servers)
		retry, err := c.do(ctx, c.servers[n], method, op, body, out, wait)
		if err == nil {
			c.mu.Lock()
			c.next = n
			c.mu.Unlock()
			return nil
		}
		if !retry || ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// do makes one call to server; retry says whether another server may
// answer it.
func (c *RemoteConn) do(ctx context.Context, server, method, op string, body []byte, out any, wait time.Duration) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout+wait)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+server+PathPrefix+op, rd)
	if err != nil {
		return false, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(SecretHeader, c.secret)
	resp, err := c.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("server %s: %w", server, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReport))
	if err != nil {
		return true, fmt.Errorf("server %s: %w", server, err)
	}
	if resp.StatusCode >= 300 {
		var e api.ErrorResponse
		json.Unmarshal(b, &e)
		switch {
		case e.Code == codeUnknownNode:
			return false, ErrUnknownNode
		case resp.StatusCode == http.StatusConflict:
			return false, fmt.Errorf("%w: %s", ErrNotPlaced, e.Error)
		}
		msg := e.Error
		if msg == "" {
			msg = resp.Status
		}
		// A refusal (403, 400, 422) is the same on every server.
		return resp.StatusCode >= 500, fmt.Errorf("server %s: %s", server, msg)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return true, fmt.Errorf("server %s: decode %s answer: %w", server, op, err)
		}
	}
	return false, nil
}
