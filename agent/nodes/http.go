package nodes

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/runs"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// PathPrefix is where the servers serve the nodes' internal endpoints.
const PathPrefix = "/v1/internal/nodes/"

// maxBody bounds a registration or a heartbeat.
const maxBody = 64 << 10

// codeUnknownNode answers the heartbeat of a node the servers do not know.
const codeUnknownNode = "unknown_node"

// barrierWait bounds how long a request waits for this server to catch up
// with the cluster's writes.
const barrierWait = 10 * time.Second

// RegisterRequest is what a client agent says of its node when it
// registers.
type RegisterRequest struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Address  string            `json:"address"`
	Runtime  string            `json:"runtime"`
	Class    string            `json:"node_class,omitempty"`
	Meta     map[string]string `json:"meta,omitempty"`
	Version  string            `json:"version,omitempty"`
	Capacity api.NodeCapacity  `json:"capacity"`
}

// Handler serves the client agents on a server: their registrations and
// heartbeats, the runs placed on their nodes, those runs' grants and
// reports. authorize admits only the cluster's agents (a certificate of
// the cluster's CA made for agents); each call about a node must then
// carry that node's secret. barrier waits until this server has the
// writes the cluster acknowledged, so that a node is not told less than
// another server told it.
func Handler(st *store.Store, ttl time.Duration, grants runs.Grants, authorize func(*http.Request) error, barrier func(context.Context) error, logger hclog.Logger) http.Handler {
	mux := http.NewServeMux()
	a := &assignments{store: st, grants: grants, barrier: barrier, logger: logger}
	mux.HandleFunc("POST "+PathPrefix+"register", func(w http.ResponseWriter, r *http.Request) {
		var req RegisterRequest
		if !decode(w, r, &req) {
			return
		}
		secret := r.Header.Get(SecretHeader)
		if secret == "" {
			writeJSON(w, http.StatusForbidden, api.ErrorResponse{Error: "a node registers with its secret (" + SecretHeader + ")", Code: api.CodeForbidden})
			return
		}
		n := &store.Node{ID: req.ID, Name: req.Name, Address: req.Address, Runtime: req.Runtime, Class: req.Class, Meta: req.Meta,
			Version: req.Version, Capacity: req.Capacity, SecretHash: hashSecret(secret)}
		reg, err := register(st, n, ttl)
		if errors.Is(err, store.ErrConflict) {
			writeJSON(w, http.StatusForbidden, api.ErrorResponse{Error: err.Error() + ": a node proves it is the node of its id with the secret in its data dir", Code: api.CodeForbidden})
			return
		}
		if err != nil {
			answerError(w, err)
			return
		}
		logger.Debug("node registered", "node", n.Name, "node_id", n.ID, "address", n.Address)
		writeJSON(w, http.StatusOK, reg)
	})
	mux.Handle("POST "+PathPrefix+"{id}/heartbeat", a.node(func(w http.ResponseWriter, r *http.Request) {
		var c api.NodeCapacity
		if !decode(w, r, &c) {
			return
		}
		if err := heartbeat(st, r.PathValue("id"), c); err != nil {
			answerError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.Handle("GET "+PathPrefix+"{id}/runs", a.node(a.list))
	mux.Handle("POST "+PathPrefix+"{id}/runs/{run}/grant", a.node(a.grant))
	mux.Handle("POST "+PathPrefix+"{id}/runs/{run}/refresh", a.node(a.refresh))
	mux.Handle("POST "+PathPrefix+"{id}/runs/{run}/revoke", a.node(a.revoke))
	mux.Handle("POST "+PathPrefix+"{id}/runs/{run}/report", a.node(a.report))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := authorize(r); err != nil {
			writeJSON(w, http.StatusForbidden, api.ErrorResponse{Error: err.Error(), Code: api.CodeForbidden})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// node admits a call about node {id} that carries the node's secret, once
// this server has caught up with the cluster.
func (a *assignments) node(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), barrierWait)
		err := a.barrier(ctx)
		cancel()
		if err != nil {
			answerError(w, err)
			return
		}
		n, err := a.store.GetNode(r.PathValue("id"))
		if errors.Is(err, store.ErrNotFound) {
			writeJSON(w, http.StatusNotFound, api.ErrorResponse{Error: ErrUnknownNode.Error(), Code: codeUnknownNode})
			return
		}
		if err != nil {
			answerError(w, err)
			return
		}
		got := hashSecret(r.Header.Get(SecretHeader))
		if n.SecretHash == "" || subtle.ConstantTimeCompare([]byte(got), []byte(n.SecretHash)) != 1 {
			writeJSON(w, http.StatusForbidden, api.ErrorResponse{Error: fmt.Sprintf("node %s: the node's secret is missing or wrong", n.Name), Code: api.CodeForbidden})
			return
		}
		h(w, r)
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, api.ErrorResponse{Error: fmt.Sprintf("decode request body: %v", err), Code: api.CodeInvalid})
		return false
	}
	return true
}

// answerError answers a failed write: an unknown node, a bad record, or a
// cluster that cannot write now, which the node retries.
func answerError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnknownNode):
		writeJSON(w, http.StatusNotFound, api.ErrorResponse{Error: err.Error(), Code: codeUnknownNode})
	case errors.Is(err, store.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, api.ErrorResponse{Error: err.Error(), Code: api.CodeInvalid})
	default:
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusServiceUnavailable, api.ErrorResponse{Error: err.Error(), Code: api.CodeUnavailable})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
