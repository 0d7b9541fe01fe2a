package server

import (
	"context"
	"net/http"
	"time"

	"github.com/hush-sh/hush/agent/audit"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/oklog/ulid/v2"
)

// SetAudit makes the server record each authenticated request in log,
// and refuse it when log cannot be written.
func (s *Server) SetAudit(log *audit.Log) {
	s.audit = log
	s.mux.Handle("POST /v1/audit/hash", s.authed(s.auditHash))
}

type auditNoteKey struct{}

// auditNote gathers what a handler learns of a request that the audit
// log's response line records, such as the name of the secret a create
// made.
type auditNote struct{ secrets []string }

// noteSecrets records the names of secrets a request touched.
func noteSecrets(r *http.Request, names ...string) {
	if n, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		n.secrets = append(n.secrets, names...)
	}
}

// audited runs h for an authenticated request between the audit log's
// request line, which must be written for h to run, and its response line.
func (s *Server) audited(w http.ResponseWriter, r *http.Request, tok *store.Token, secret string, h func(http.ResponseWriter, *http.Request, *store.Token)) {
	if s.audit == nil {
		h(w, r, tok)
		return
	}
	e := &audit.Entry{
		Type: "request", ID: ulid.Make().String(), Accessor: tok.Accessor, Token: s.audit.Hash(secret),
		User: tok.User, Operation: r.Pattern, Path: r.URL.Path,
	}
	if name := r.PathValue("name"); name != "" {
		e.Secrets = []string{name}
	}
	if err := s.audit.Write(e); err != nil {
		s.logger.Error("request refused: the audit log cannot be written", "error", err)
		writeError(w, api.CodeUnavailable, "the agent refuses requests while its audit log cannot be written; its operator must fix that (see the agent's log)")
		return
	}
	note := &auditNote{}
	rec, ok := w.(*statusRecorder)
	if !ok {
		rec = &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	}
	h(rec, r.WithContext(context.WithValue(r.Context(), auditNoteKey{}, note)), tok)
	e.Type, e.Status, e.Outcome = "response", rec.status, "ok"
	if rec.status >= 400 {
		e.Outcome = "error"
	}
	e.Secrets = append(e.Secrets, note.secrets...)
	e.Time = time.Time{} // Write stamps it
	if err := s.audit.Write(e); err != nil {
		s.logger.Error("the audit log cannot be written", "error", err)
	}
}

// auditHash answers the audit log's hash of a value, so that an operator
// can look for it in the log.
func (s *Server) auditHash(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if !tok.Management {
		writeError(w, api.CodeForbidden, "audit hashes are for management tokens")
		return
	}
	var req api.AuditHashRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	writeJSON(w, http.StatusOK, &api.AuditHash{Hash: s.audit.Hash(req.Input)})
}
