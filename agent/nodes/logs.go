package nodes

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// NodePathPrefix is where a node serves the servers: the logs of the runs
// it runs.
const NodePathPrefix = "/v1/internal/node/"

// LogSource copies the log of one of owner's runs, as the run manager
// does.
type LogSource interface {
	Logs(ctx context.Context, owner, ref string, follow bool, tail int, w io.Writer, flush func()) error
}

// NodeHandler serves the servers on a node. authorize admits only the
// cluster's servers.
func NodeHandler(logs LogSource, authorize func(*http.Request) error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+NodePathPrefix+"runs/{owner}/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		tail, err := strconv.Atoi(q.Get("tail"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, api.ErrorResponse{Error: "tail is not a number", Code: api.CodeInvalid})
			return
		}
		flush := func() {}
		if f, ok := w.(http.Flusher); ok {
			flush = f.Flush
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		// Once the body has begun, errors can only end it early.
		logs.Logs(r.Context(), r.PathValue("owner"), r.PathValue("id"), q.Get("follow") == "true", tail, w, flush)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := authorize(r); err != nil {
			writeJSON(w, http.StatusForbidden, api.ErrorResponse{Error: err.Error(), Code: api.CodeForbidden})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// ErrNodeUnreachable is returned when the node of a run does not answer.
var ErrNodeUnreachable = errors.New("the run's node does not answer")

// RemoteLogs reaches the logs of runs on other nodes, from a server.
type RemoteLogs struct {
	Store  *store.Store
	client *http.Client
}

// NewRemoteLogs returns a reader of other nodes' logs over tlsConf, the
// server's certificate and the cluster CA.
func NewRemoteLogs(st *store.Store, tlsConf *tls.Config) *RemoteLogs {
	return &RemoteLogs{Store: st, client: &http.Client{
		// No timeout: a follower streams for as long as the run runs.
		Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true, IdleConnTimeout: time.Minute,
			ResponseHeaderTimeout: requestTimeout},
	}}
}

// Logs copies run's log from its node to w.
func (l *RemoteLogs) Logs(ctx context.Context, run *store.Run, follow bool, tail int, w io.Writer, flush func()) error {
	node, err := l.Store.FindNode(run.Node)
	if err != nil {
		return fmt.Errorf("find run %s's node: %w", run.ID, err)
	}
	u := fmt.Sprintf("%s%sruns/%s/%s/logs?follow=%t&tail=%d", node.Address, NodePathPrefix,
		url.PathEscape(run.Owner), url.PathEscape(run.ID), follow, tail)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: node %s: %w", ErrNodeUnreachable, node.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e api.ErrorResponse
		json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&e)
		return fmt.Errorf("node %s: logs of run %s: %s %s", node.Name, run.ID, resp.Status, e.Error)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			flush()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("node %s: logs of run %s: %w", node.Name, run.ID, err)
		}
	}
}
