// Package server is the agent's HTTP API: JSON under /v1, bearer tokens,
// and errors as {"error": "..."} with a fitting status code.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/audit"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/runs"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// maxBodySize bounds request bodies: a secret's data may be 1 MiB, which
// base64 makes about 1.4 MiB, plus fields and JSON.
const maxBodySize = 2 << 20

// Info is what the agent says about itself on /v1/agent/self.
type Info struct {
	Version string
	Cluster string
	Node    string
	Runtime string
	// Plugins reports the provider plugins; nil means none.
	Plugins func() []api.PluginStatus
}

func (i Info) plugins() []api.PluginStatus {
	if i.Plugins == nil {
		return []api.PluginStatus{}
	}
	return i.Plugins()
}

// ImageImporter loads image archives into the runtime.
type ImageImporter interface {
	Import(ctx context.Context, archive io.Reader) ([]string, error)
}

// ReferenceChecker says whether a user may name a provider reference.
type ReferenceChecker interface {
	CheckReference(user, provider, ref string) error
	// Providers names the agent's provider plugins.
	Providers() []string
	// Validate returns what the provider says is wrong with ref, or "".
	Validate(ctx context.Context, provider, ref string) (string, error)
}

// Server serves the agent's HTTP API.
type Server struct {
	store  *store.Store
	runs   *runs.Manager
	images ImageImporter    // nil when the runtime has no images
	refs   ReferenceChecker // nil when the agent has no plugins
	info   Info
	logger hclog.Logger
	mux    *http.ServeMux
	// requests counts and times the requests served.
	requests *requestMetrics
	limits   config.HTTPLimits
	audit    *audit.Log   // nil: no audit log
	rates    *rateLimiter // nil: no rate limit
	cluster  Cluster      // nil: reads need no barrier
	// selfNode is the agent's own node; scheduled is set in a cluster of
	// servers, which places runs on nodes (nodes.go).
	selfNode  *store.Node
	scheduled bool
}

// New returns a server over st and the run manager rm. images and refs may
// be nil.
func New(st *store.Store, rm *runs.Manager, images ImageImporter, refs ReferenceChecker, info Info, logger hclog.Logger) *Server {
	s := &Server{store: st, runs: rm, images: images, refs: refs, info: info, logger: logger, mux: http.NewServeMux(),
		requests: newRequestMetrics()}
	s.SetLimits((&config.Config{}).HTTPLimits())
	s.nodeRoutes()
	s.mux.HandleFunc("GET /v1/health", s.health)
	s.mux.Handle("GET /v1/agent/self", s.authed(s.self))
	s.mux.Handle("POST /v1/secrets", s.authed(s.createSecret))
	s.mux.Handle("GET /v1/secrets", s.authed(s.listSecrets))
	s.mux.Handle("GET /v1/secrets/{name}", s.authed(s.getSecret))
	s.mux.Handle("DELETE /v1/secrets/{name}", s.authed(s.deleteSecret))
	s.mux.Handle("GET /v1/secrets/{name}/export", s.authed(s.exportSecret))
	s.mux.Handle("POST /v1/secrets/digest", s.authed(s.digestSecret))
	s.mux.Handle("GET /v1/tombstones", s.authed(s.listTombstones))
	s.mux.Handle("POST /v1/acl/tokens", s.authed(s.createToken))
	s.mux.Handle("GET /v1/acl/tokens", s.authed(s.listTokens))
	s.mux.Handle("DELETE /v1/acl/tokens/{accessor}", s.authed(s.revokeToken))
	s.mux.Handle("GET /v1/plugins", s.authed(s.listPlugins))
	s.routeRuns()
	s.keyringRoutes()
	immutable := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, DELETE")
		writeError(w, api.CodeImmutable, "secrets are immutable: delete the secret and create it again")
	}
	s.mux.HandleFunc("PUT /v1/secrets/{name}", immutable)
	s.mux.HandleFunc("PATCH /v1/secrets/{name}", immutable)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, api.CodeNotFound, fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
	})
	return s
}

// ServeHTTP caps each request's body, logs the request (never its
// body) and routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	capBody(w, r)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	d := time.Since(start)
	s.requests.observe(r, rec.status, d)
	s.logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", d)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection, to flush
// streamed logs.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// authed wraps a handler so that it runs only with a valid bearer token,
// which it is given.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *store.Token)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || secret == "" {
			writeError(w, api.CodeUnauthenticated, "missing token: send it as `Authorization: Bearer TOKEN` (the CLI reads HUSH_TOKEN or HUSH_TOKEN_FILE)")
			return
		}
		// One form of the token for its lookup and its audit hash. The
		// lookup reads the store as the handler does: consistently when
		// the handler reads, and, for a write, once more consistently when
		// the token is not found here, as it may be new.
		secret = strings.TrimSpace(secret)
		reads := readsState(r)
		if reads && !s.consistent(w, r) {
			return
		}
		tok, err := s.store.LookupToken(secret)
		if !reads && errors.Is(err, store.ErrNotFound) && s.cluster != nil {
			if !s.consistent(w, r) {
				return
			}
			tok, err = s.store.LookupToken(secret)
		}
		if errors.Is(err, store.ErrExpired) {
			writeError(w, api.CodeTokenExpired, expiredMessage(tok))
			return
		}
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, api.CodeUnauthenticated, "token not valid: check HUSH_TOKEN, or ask your operator for a token")
			return
		}
		if err != nil {
			s.internalError(w, "look up token", err)
			return
		}
		if !s.allow(w, tok) {
			return
		}
		s.audited(w, r, tok, secret, h)
	})
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	if s.audit != nil {
		if err := s.audit.Err(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, &api.Health{Status: "failing",
				Error: "the audit log cannot be written (the agent's log says why); the agent refuses requests until it can write it"})
			return
		}
	}
	h := &api.Health{Status: "ok"}
	if s.cluster != nil {
		st := s.cluster.Status()
		h.Raft, h.Leader = st.State, st.LeaderID
		if st.LeaderID == "" {
			h.Status, h.Error = "failing", "the cluster has no leader: an election is under way, or fewer than a quorum of servers are reachable (no quorum)"
			writeJSON(w, http.StatusServiceUnavailable, h)
			return
		}
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) self(w http.ResponseWriter, _ *http.Request, tok *store.Token) {
	self := &api.AgentSelf{
		Version: s.info.Version, Cluster: s.info.Cluster, Node: s.info.Node, User: tok.User,
		Runtime: s.info.Runtime, Plugins: s.info.plugins(),
	}
	if s.runs != nil { // nil in tests of the secret endpoints alone
		capacity := s.runs.Capacity()
		self.Capacity = &capacity
	}
	writeJSON(w, http.StatusOK, self)
}

func (s *Server) listPlugins(w http.ResponseWriter, _ *http.Request, _ *store.Token) {
	writeJSON(w, http.StatusOK, &api.ListPluginsResponse{Plugins: s.info.plugins()})
}

// decodeJSON reads the request body into v, answering the request itself
// and returning false when the body is too large or not what v expects.
// Its messages name what is too large and the field that is wrong.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodySize))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, api.CodeTooLarge, bodyTooLarge(v))
		return false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		writeError(w, api.CodeInvalid, "request body did not arrive in time: the agent's http block sets read_timeout")
		return false
	}
	if err != nil {
		writeError(w, api.CodeInvalid, "read request body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		field, msg := describeDecodeError(body, v, err)
		writeFieldError(w, field, msg)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// internalError answers 500 and logs the cause. Store errors carry names,
// never values, so they are safe to log.
func (s *Server) internalError(w http.ResponseWriter, what string, err error) {
	if s.clusterError(w, err) {
		return
	}
	s.logger.Error("request failed", "op", what, "error", err)
	writeError(w, api.CodeInternal, what+": internal error; see the agent's log")
}
