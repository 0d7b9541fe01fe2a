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
	"sync"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// RemoteConn is a client agent's line to the servers: HTTPS with its agent
// certificate, to one server at a time, moving on to the next when one
// does not answer or cannot write.
type RemoteConn struct {
	servers []string
	client  *http.Client

	mu   sync.Mutex
	next int // the server to try first
}

// requestTimeout bounds one call to one server.
const requestTimeout = 10 * time.Second

// NewRemoteConn returns a conn to the servers at the API addresses
// servers ("host:port"), over tlsConf.
func NewRemoteConn(servers []string, tlsConf *tls.Config) *RemoteConn {
	return &RemoteConn{
		servers: servers,
		client: &http.Client{
			Timeout:   requestTimeout,
			Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true, IdleConnTimeout: time.Minute},
		},
	}
}

// Register records n with the servers.
func (c *RemoteConn) Register(ctx context.Context, n *store.Node) (*Registration, error) {
	var reg Registration
	if err := c.call(ctx, "register", n, &reg); err != nil {
		return nil, err
	}
	if reg.HeartbeatInterval <= 0 {
		return nil, errors.New("register node: the server gave no heartbeat interval")
	}
	return &reg, nil
}

// Heartbeat tells the servers that node id is up.
func (c *RemoteConn) Heartbeat(ctx context.Context, id string, capacity api.NodeCapacity) error {
	return c.call(ctx, id+"/heartbeat", capacity, nil)
}

// call POSTs req to each server in turn, from the last one that answered,
// until one does.
func (c *RemoteConn) call(ctx context.Context, op string, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s: %w", op, err)
	}
	c.mu.Lock()
	first := c.next
	c.mu.Unlock()
	var errs []error
	for i := range c.servers {
		n := (first + i) % len(c.servers)
		retry, err := c.post(ctx, c.servers[n], op, body, out)
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

// post makes one call to server; retry says whether another server may
// answer it.
func (c *RemoteConn) post(ctx context.Context, server, op string, body []byte, out any) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+server+PathPrefix+op, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("server %s: %w", server, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return true, fmt.Errorf("server %s: %w", server, err)
	}
	if resp.StatusCode >= 300 {
		var e api.ErrorResponse
		json.Unmarshal(b, &e)
		if e.Code == codeUnknownNode {
			return false, ErrUnknownNode
		}
		msg := e.Error
		if msg == "" {
			msg = resp.Status
		}
		// A refusal (403, 400) is the same on every server.
		return resp.StatusCode >= 500, fmt.Errorf("server %s: %s", server, msg)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return true, fmt.Errorf("server %s: decode %s answer: %w", server, op, err)
		}
	}
	return false, nil
}
