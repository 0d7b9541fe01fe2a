package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

const (
	// snapshotPath is where an operator saves and restores snapshots.
	snapshotPath = "/v1/operator/snapshot"
	// maxSnapshotSize bounds a snapshot file a restore takes.
	maxSnapshotSize = 16 << 30
	// snapshotTimeout is how long a snapshot may take to travel and to be
	// restored, in place of the read and write timeouts.
	snapshotTimeout = 30 * time.Minute
)

func (s *Server) snapshotRoutes() {
	s.mux.Handle("GET "+snapshotPath, s.authed(s.snapshotOperator(s.saveSnapshot)))
	s.mux.Handle("PUT "+snapshotPath, s.authed(s.snapshotOperator(s.restoreSnapshot)))
}

// snapshotOperator lets only management tokens reach h: a snapshot holds
// every user's secrets, sealed, and a restore replaces them.
func (s *Server) snapshotOperator(h func(http.ResponseWriter, *http.Request, *store.Token)) func(http.ResponseWriter, *http.Request, *store.Token) {
	return func(w http.ResponseWriter, r *http.Request, tok *store.Token) {
		if !tok.Management {
			writeError(w, api.CodeForbidden, "snapshots are saved and restored with a management token, such as the agent's root token")
			return
		}
		h(w, r, tok)
	}
}

// saveSnapshot streams a sealed snapshot of the cluster's state, as of a
// consistent read on this server.
func (s *Server) saveSnapshot(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	extendDeadlines(w, snapshotTimeout)
	out := &startOnWrite{w: w}
	sw, err := s.store.NewSnapshotWriter(r.Context(), out)
	if err != nil {
		s.internalError(w, "save snapshot", err)
		return
	}
	err = s.cluster.SaveSnapshot(r.Context(), sw)
	if err == nil {
		err = sw.Close()
	}
	switch {
	case err != nil && !out.started:
		s.internalError(w, "save snapshot", err)
	case err != nil:
		// The answer has begun: cutting it leaves a file without its last
		// chunk, which a restore refuses.
		s.logger.Error("snapshot cut short", "error", err)
		panic(http.ErrAbortHandler)
	default:
		s.logger.Info("snapshot saved", "bytes", out.n, "by", tok.Accessor)
	}
}

// startOnWrite sends the answer's headers at its first byte, so that an
// error before it can still be answered as one.
type startOnWrite struct {
	w       http.ResponseWriter
	started bool
	n       int64
}

func (o *startOnWrite) Write(p []byte) (int, error) {
	if !o.started {
		o.started = true
		o.w.Header().Set("Content-Type", "application/octet-stream")
		o.w.WriteHeader(http.StatusOK)
	}
	n, err := o.w.Write(p)
	o.n += int64(n)
	return n, err
}

// restoreSnapshot checks a sealed snapshot whole, then makes it the state
// of every server of the cluster, and says what it replaced.
func (s *Server) restoreSnapshot(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	extendDeadlines(w, snapshotTimeout)
	sp, err := s.store.SpoolSnapshot(r.Context(), r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, api.CodeTooLarge, "the snapshot is over the 16 GiB a restore takes")
			return
		}
		// Not a snapshot, altered, or not this cluster's: the message
		// says which.
		writeError(w, api.CodeInvalid, "restore snapshot: "+err.Error())
		return
	}
	defer sp.Close()
	// Before the restore, as the leader's state, after a consistent read.
	if !s.consistent(w, r) {
		return
	}
	replaced := s.store.Summary()
	if err := s.cluster.RestoreSnapshot(r.Context(), sp.File, sp.Size); err != nil {
		s.internalError(w, "restore snapshot", err)
		return
	}
	// Every server's applied index moves past the restore, so that
	// consistent reads on followers do not wait for the next write.
	if err := s.store.ShareKeyring(); err != nil {
		s.logger.Warn("share the restored keyring", "error", err)
	}
	s.logger.Info("snapshot restored", "saved_at", sp.Info.CreatedAt, "secrets", sp.Summary.Secrets,
		"replaced_index", replaced.Index, "replaced_secrets", replaced.Secrets, "by", tok.Accessor)
	writeJSON(w, http.StatusOK, &api.SnapshotRestore{
		SavedAt:  sp.Info.CreatedAt,
		Restored: api.SnapshotState{Index: sp.Info.Index, Secrets: sp.Summary.Secrets, Tokens: sp.Summary.Tokens, Runs: sp.Summary.Runs},
		Replaced: api.SnapshotState{Index: replaced.Index, Secrets: replaced.Secrets, Tokens: replaced.Tokens, Runs: replaced.Runs},
	})
}
