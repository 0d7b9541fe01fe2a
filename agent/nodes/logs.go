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

// LogSource is what a node's run manager does for the servers: copy the
// log of one of owner's runs, and forget a run the servers deleted.
type LogSource interface {
	Logs(ctx context.Context, owner, ref string, follow bool, tail int, w io.Writer, flush func()) error
	Forget(ctx context.Context, owner, id string) error
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
		// A follower streams for as long as the run runs: the server
		// that asked bounds it.
		rc := http.NewResponseController(w)
		rc.SetWriteDeadline(time.Time{})
		flush := func() { rc.Flush() }
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		// Once the body has begun, errors can only end it early.
		logs.Logs(r.Context(), r.PathValue("owner"), r.PathValue("id"), q.Get("follow") == "true", tail, w, flush)
	})
	mux.HandleFunc("DELETE "+NodePathPrefix+"runs/{owner}/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := logs.Forget(r.Context(), r.PathValue("owner"), r.PathValue("id")); err != nil {
			writeJSON(w, http.StatusInternalServerError, api.ErrorResponse{Error: err.Error(), Code: api.CodeInternal})
			return
		}
		w.WriteHeader(http.StatusNoContent)
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

// Remote reaches, from a server, the nodes that runs are placed on.
type Remote struct {
	Store  *store.Store
	client *http.Client
}

// NewRemote returns a line to the nodes over tlsConf, the server's
// certificate and the cluster CA.
func NewRemote(st *store.Store, tlsConf *tls.Config) *Remote {
	return &Remote{Store: st, client: &http.Client{
		// No timeout: a follower streams for as long as the run runs.
		Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true, IdleConnTimeout: time.Minute,
			ResponseHeaderTimeout: requestTimeout},
	}}
}

// Logs copies run's log from its node to w.
func (l *Remote) Logs(ctx context.Context, run *store.Run, follow bool, tail int, w io.Writer, flush func()) error {
	resp, node, err := l.do(ctx, run, http.MethodGet, fmt.Sprintf("/logs?follow=%t&tail=%d", follow, tail), http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
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

// Forget has run's node remove its log of the run, which was deleted.
func (l *Remote) Forget(ctx context.Context, run *store.Run) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, _, err := l.do(ctx, run, http.MethodDelete, "", http.StatusNoContent)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// do sends method to run's endpoint on its node, at suffix, and returns
// the answer when it has status want.
func (l *Remote) do(ctx context.Context, run *store.Run, method, suffix string, want int) (*http.Response, *store.Node, error) {
	node, err := l.Store.GetNode(run.Node)
	if err != nil {
		return nil, nil, fmt.Errorf("find run %s's node: %w", run.ID, err)
	}
	u := fmt.Sprintf("%s%sruns/%s/%s%s", node.Address, NodePathPrefix, url.PathEscape(run.Owner), url.PathEscape(run.ID), suffix)
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: node %s: %w", ErrNodeUnreachable, node.Name, err)
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		var e api.ErrorResponse
		json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&e)
		return nil, nil, fmt.Errorf("node %s: %s run %s: %s %s", node.Name, method, run.ID, resp.Status, e.Error)
	}
	return resp, node, nil
}
