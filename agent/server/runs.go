package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hush-sh/hush/agent/runs"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

func (s *Server) routeRuns() {
	s.mux.Handle("POST /v1/runs", s.authed(s.createRun))
	s.mux.Handle("GET /v1/runs", s.authed(s.listRuns))
	s.mux.Handle("GET /v1/runs/{id}", s.authed(s.getRun))
	s.mux.Handle("DELETE /v1/runs/{id}", s.authed(s.deleteRun))
	s.mux.Handle("POST /v1/runs/{id}/stop", s.authed(s.stopRun))
	s.mux.Handle("GET /v1/runs/{id}/logs", s.authed(s.runLogs))
	s.mux.Handle("POST /v1/images/import", s.authed(s.importImage))
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	var req api.CreateRunRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	by := runs.Submitter{Management: tok.Management}
	if tok.RunID != "" {
		parent, err := s.runs.Get(tok.User, tok.RunID)
		if err != nil {
			s.internalError(w, "find the run that submits", err)
			return
		}
		by = runs.Submitter{RunID: tok.RunID, Secrets: tok.Scope, SecretsWrite: tok.SecretsWrite, Management: parent.Management}
	}
	noteSecrets(r, req.Secrets...)
	run, err := s.runs.Submit(tok.User, by, &req)
	if !s.runOK(w, r, err) {
		return
	}
	writeJSON(w, http.StatusCreated, runOut(run))
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	list, err := s.runs.List(tok.User)
	if !s.runOK(w, r, err) {
		return
	}
	if tok.RunID != "" {
		list = runs.Subtree(list, tok.RunID)
	}
	out := make([]*api.Run, len(list))
	for i, r := range list {
		out[i] = runOut(r)
	}
	writeJSON(w, http.StatusOK, &api.ListRunsResponse{Runs: out})
}

// maxWait bounds a blocking query on a run.
const maxWait = 5 * time.Minute

// getRun answers at once, or, with ?index=N, once the run has more than N
// events or has ended, waiting at most ?wait (default 1m).
func (s *Server) getRun(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	q := r.URL.Query()
	if v := q.Get("index"); v != "" {
		index, err := strconv.Atoi(v)
		if err != nil || index < 0 {
			writeError(w, api.CodeInvalid, fmt.Sprintf("index %q is not a number of events", v))
			return
		}
		wait := time.Minute
		if v := q.Get("wait"); v != "" {
			if wait, err = time.ParseDuration(v); err != nil || wait <= 0 {
				writeError(w, api.CodeInvalid, fmt.Sprintf("wait %q is not a duration such as 30s", v))
				return
			}
		}
		run, ok := s.findRun(w, r, tok)
		if !ok {
			return
		}
		wait = min(wait, maxWait)
		// The answer may take as long as the wait, and then its time.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + s.limits.WriteTimeout))
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		run, err = s.runs.Watch(ctx, tok.User, run.ID, index)
		if !s.runOK(w, r, err) {
			return
		}
		writeJSON(w, http.StatusOK, runOut(run))
		return
	}
	run, ok := s.findRun(w, r, tok)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, runOut(run))
}

// findRun finds the run the path names among those tok reaches: all of its
// user's runs, or for a run's token, that run and the runs it launched. It
// answers the request itself when there is none.
func (s *Server) findRun(w http.ResponseWriter, r *http.Request, tok *store.Token) (*store.Run, bool) {
	run, err := s.runs.Get(tok.User, r.PathValue("id"))
	if err == nil && tok.RunID != "" && !s.runs.Descends(run, tok.RunID) {
		err = runs.ErrNotFound
	}
	return run, s.runOK(w, r, err)
}

func (s *Server) stopRun(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	run, ok := s.findRun(w, r, tok)
	if !ok {
		return
	}
	run, err := s.runs.Stop(tok.User, run.ID)
	if !s.runOK(w, r, err) {
		return
	}
	writeJSON(w, http.StatusAccepted, runOut(run))
}

func (s *Server) deleteRun(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	run, ok := s.findRun(w, r, tok)
	if !ok {
		return
	}
	if !s.runOK(w, r, s.runs.Delete(r.Context(), tok.User, run.ID)) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// runLogs streams a run's output as text; with follow=true it keeps the
// response open until the run ends or the client goes away.
func (s *Server) runLogs(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	q := r.URL.Query()
	follow := q.Get("follow") == "true"
	tail := -1
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, api.CodeInvalid, fmt.Sprintf("tail %q is not a number of lines", v))
			return
		}
		tail = n
	}
	run, ok := s.findRun(w, r, tok)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// A follower may wait on a quiet run for hours: each write gets its
	// own deadline rather than the whole answer one.
	sw := newStreamWriter(w, s.limits.WriteTimeout)
	// Once the body has begun, errors can only end it early.
	if err := s.runs.Logs(r.Context(), tok.User, run.ID, follow, tail, sw, sw.Flush); err != nil {
		s.logger.Warn("stream run logs", "run", r.PathValue("id"), "error", err)
	}
	sw.extend() // for the end of the answer, which net/http writes
}

func (s *Server) importImage(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if !tok.Management {
		writeError(w, api.CodeForbidden, "importing images needs a management token, such as the agent's root token")
		return
	}
	if s.images == nil {
		writeError(w, api.CodeNoImages, "this agent runs workloads with the exec runtime, which uses no images")
		return
	}
	// An archive of a few GiB takes longer than a request's timeouts;
	// bound (limits.go) caps its size.
	extendDeadlines(w, importTimeout)
	// The importer reads a file that is no tar as far as it goes and says
	// only "unexpected EOF": look at its first block first.
	body := bufio.NewReaderSize(r.Body, api.ImageArchiveHeadSize)
	head, err := body.Peek(api.ImageArchiveHeadSize)
	if err != nil && !errors.Is(err, io.EOF) {
		writeError(w, api.CodeInvalid, fmt.Sprintf("read image archive: %v", err))
		return
	}
	if err := api.CheckImageArchive(head); err != nil {
		writeError(w, api.CodeInvalid, "the upload is "+err.Error())
		return
	}
	names, err := s.images.Import(r.Context(), body)
	if err != nil {
		writeError(w, api.CodeInvalid, err.Error())
		return
	}
	s.logger.Info("images imported", "images", names)
	writeJSON(w, http.StatusOK, &api.ImportImageResponse{Images: names})
}

// runOK answers the request when err is not nil and reports whether it was
// nil.
func (s *Server) runOK(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, runs.ErrNotFound):
		writeError(w, api.CodeNotFound, fmt.Sprintf("run %s not found: `hush get runs` lists yours", r.PathValue("id")))
	case errors.Is(err, runs.ErrInvalid):
		writeError(w, api.CodeInvalid, err.Error())
	case errors.Is(err, runs.ErrForbidden):
		writeError(w, api.CodeForbidden, err.Error())
	case errors.Is(err, runs.ErrEnded):
		writeError(w, api.CodeRunEnded, err.Error())
	case errors.Is(err, runs.ErrShuttingDown), errors.Is(err, runs.ErrUnavailable):
		writeError(w, api.CodeUnavailable, err.Error())
	default:
		s.internalError(w, "run request", err)
	}
	return false
}
