package nodes

import (
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

// Handler serves the client agents' registrations and heartbeats on a
// server. authorize admits only the cluster's agents: those that present
// a certificate of the cluster's CA made for agents.
func Handler(st *store.Store, ttl time.Duration, grants runs.Grants, authorize func(*http.Request) error, logger hclog.Logger) http.Handler {
	mux := http.NewServeMux()
	a := &assignments{store: st, grants: grants, logger: logger}
	mux.HandleFunc("GET "+PathPrefix+"{id}/runs", a.list)
	mux.HandleFunc("POST "+PathPrefix+"{id}/runs/{run}/grant", a.grant)
	mux.HandleFunc("POST "+PathPrefix+"{id}/runs/{run}/revoke", a.revoke)
	mux.HandleFunc("POST "+PathPrefix+"{id}/runs/{run}/report", a.report)
	mux.HandleFunc("POST "+PathPrefix+"register", func(w http.ResponseWriter, r *http.Request) {
		var n store.Node
		if !decode(w, r, &n) {
			return
		}
		reg, err := register(st, &n, ttl)
		if err != nil {
			answerError(w, err)
			return
		}
		logger.Debug("node registered", "node", n.Name, "node_id", n.ID, "address", n.Address)
		writeJSON(w, http.StatusOK, reg)
	})
	mux.HandleFunc("POST "+PathPrefix+"{id}/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		var c api.NodeCapacity
		if !decode(w, r, &c) {
			return
		}
		if err := heartbeat(st, r.PathValue("id"), c); err != nil {
			answerError(w, err)
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
