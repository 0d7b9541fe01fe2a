package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/oklog/ulid/v2"
)

func (s *Server) createSecret(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	var req api.CreateSecretRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		status := http.StatusBadRequest
		var size *api.SizeError
		if errors.As(err, &size) {
			status = http.StatusRequestEntityTooLarge
		}
		writeError(w, status, err.Error())
		return
	}
	sec := &store.Secret{
		ID:        req.ID,
		Name:      req.Name,
		Type:      req.Type,
		Owner:     tok.User,
		CreatedAt: req.CreatedAt.UTC(),
		Fields:    req.Fields,
		Data:      req.Data,
		From:      req.From,
	}
	if sec.ID == "" {
		sec.ID = ulid.Make().String()
	} else if _, err := ulid.ParseStrict(sec.ID); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("id %q is not a ULID: leave it empty and the agent picks one", sec.ID))
		return
	}
	if sec.CreatedAt.IsZero() {
		sec.CreatedAt = time.Now().UTC().Truncate(time.Second)
	}
	err := s.store.CreateSecret(sec)
	var unique *store.UniqueTypeError
	switch {
	case errors.As(err, &unique):
		writeError(w, http.StatusConflict, fmt.Sprintf(
			"a user may hold only one %s secret, and you already have %s: delete it first", unique.Type, unique.Existing))
		return
	case errors.Is(err, store.ErrExists):
		writeError(w, http.StatusConflict, fmt.Sprintf("secret %s already exists", sec.Name))
		return
	case err != nil:
		s.internalError(w, "create secret", err)
		return
	}
	s.logger.Info("secret created", "user", sec.Owner, "name", sec.Name, "type", sec.Type, "id", sec.ID)
	writeJSON(w, http.StatusCreated, sec.Metadata())
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	typ := api.SecretType(r.URL.Query().Get("type"))
	if typ != "" {
		if _, ok := api.LookupType(typ); !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown secret type %q", typ))
			return
		}
	}
	secrets, err := s.store.ListSecrets(tok.User)
	if err != nil {
		s.internalError(w, "list secrets", err)
		return
	}
	out := &api.ListSecretsResponse{Secrets: []*api.Secret{}}
	for _, sec := range secrets {
		if typ == "" || sec.Type == typ {
			out.Secrets = append(out.Secrets, sec.Metadata())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getSecret(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	sec, err := s.store.GetSecret(tok.User, r.PathValue("name"))
	if !s.storeOK(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, sec.Metadata())
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	name := r.PathValue("name")
	if !s.storeOK(w, r, s.store.DeleteSecret(tok.User, name)) {
		return
	}
	s.logger.Info("secret deleted", "user", tok.User, "name", name)
	w.WriteHeader(http.StatusNoContent)
}

// storeOK answers the request when err is not nil and reports whether it
// was nil. Another user's secret is simply not found.
func (s *Server) storeOK(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("secret %s not found", r.PathValue("name")))
	default:
		s.internalError(w, "read secret", err)
	}
	return false
}
