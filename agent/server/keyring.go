package server

import (
	"errors"
	"net/http"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

func (s *Server) keyringRoutes() {
	s.mux.Handle("GET /v1/operator/keyring", s.authed(s.operator(s.listKeyring)))
	s.mux.Handle("POST /v1/operator/keyring/rotate", s.authed(s.operator(s.rotateKeyring)))
	s.mux.Handle("POST /v1/operator/keyring/prune", s.authed(s.operator(s.pruneKeyring)))
}

// operator lets only management tokens reach h.
func (s *Server) operator(h func(http.ResponseWriter, *http.Request, *store.Token)) func(http.ResponseWriter, *http.Request, *store.Token) {
	return func(w http.ResponseWriter, r *http.Request, tok *store.Token) {
		if !tok.Management {
			writeError(w, api.CodeForbidden, "the keyring is managed with a management token, such as the agent's root token")
			return
		}
		h(w, r, tok)
	}
}

func (s *Server) listKeyring(w http.ResponseWriter, _ *http.Request, _ *store.Token) {
	s.writeKeyring(w, http.StatusOK)
}

func (s *Server) writeKeyring(w http.ResponseWriter, code int) {
	status, err := s.store.KeyringStatus()
	if err != nil {
		s.internalError(w, "list keyring", err)
		return
	}
	out := &api.Keyring{Keys: make([]*api.KeyringKey, len(status))}
	for i, k := range status {
		out.Keys[i] = &api.KeyringKey{ID: k.ID, State: k.State, CreatedAt: k.CreatedAt, Records: k.Records, Unreadable: k.Unreadable}
		if !k.RetiredAt.IsZero() {
			out.Keys[i].RetiredAt = &k.RetiredAt
		}
	}
	writeJSON(w, code, out)
}

func (s *Server) rotateKeyring(w http.ResponseWriter, _ *http.Request, tok *store.Token) {
	id, err := s.store.RotateKeyring()
	if err != nil {
		s.internalError(w, "rotate keyring", err)
		return
	}
	s.logger.Info("keyring rotated", "key", id, "by", tok.Accessor)
	s.writeKeyring(w, http.StatusOK)
}

func (s *Server) pruneKeyring(w http.ResponseWriter, _ *http.Request, tok *store.Token) {
	ids, err := s.store.PruneKeyring()
	if errors.Is(err, store.ErrNothingToPrune) {
		writeError(w, api.CodeConflict, err.Error())
		return
	}
	if err != nil {
		s.internalError(w, "prune keyring", err)
		return
	}
	s.logger.Info("keyring pruned", "keys", ids, "by", tok.Accessor)
	writeJSON(w, http.StatusOK, &api.PruneKeyringResponse{Pruned: ids})
}
