package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hush-sh/hush/agent/plugins"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/oklog/ulid/v2"
)

// writeAllowed answers 403 and returns false when tok is a run's token
// whose run spec does not grant writing secrets.
func writeAllowed(w http.ResponseWriter, tok *store.Token, verb string) bool {
	if tok.RunID == "" || tok.SecretsWrite {
		return true
	}
	writeError(w, api.CodeForbidden, fmt.Sprintf(
		"a run's token cannot %s secrets unless its run spec grants it: add `api: {secrets: %s}` to the spec, or use your own token", verb, api.AccessWrite))
	return false
}

func (s *Server) createSecret(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if !writeAllowed(w, tok, "create") {
		return
	}
	sec, noCheck, ok := s.decodeSecret(w, r, tok)
	if !ok {
		return
	}
	if sec.From != "" && !noCheck {
		if msg := s.unknownProvider(sec); msg != "" {
			writeError(w, api.CodeInvalid, msg)
			return
		}
		if msg := s.malformedReference(r.Context(), sec); msg != "" {
			writeError(w, api.CodeInvalid, msg)
			return
		}
	}
	if sec.From != "" && !tok.Management && s.refs != nil {
		provider, ref := api.SplitReference(sec.From)
		err := s.refs.CheckReference(tok.User, provider, ref)
		switch {
		case errors.Is(err, plugins.ErrNotAllowed):
			writeError(w, api.CodeForbidden, fmt.Sprintf("secret %s: %v", sec.Name, err))
			return
		case err != nil:
			s.internalError(w, "check reference", err)
			return
		}
	}
	if sec.ID == "" {
		sec.ID = ulid.Make().String()
	} else if _, err := ulid.ParseStrict(sec.ID); err != nil {
		writeError(w, api.CodeInvalid, fmt.Sprintf("id %q is not a ULID: leave it empty and the agent picks one", sec.ID))
		return
	}
	if sec.CreatedAt.IsZero() {
		sec.CreatedAt = time.Now().UTC().Truncate(time.Second)
	}
	noteSecrets(r, sec.Name)
	created, err := s.store.CreateSecret(sec)
	var unique *store.UniqueTypeError
	switch {
	case errors.As(err, &unique):
		writeError(w, api.CodeUniqueType, fmt.Sprintf(
			"a user may hold only one %s secret, and you already have %s: delete it first", unique.Type, unique.Existing))
		return
	case errors.Is(err, store.ErrExists):
		writeError(w, api.CodeSecretExists, fmt.Sprintf("secret %s already exists", sec.Name))
		return
	case errors.Is(err, store.ErrDeleted):
		writeError(w, api.CodeSecretDeleted, fmt.Sprintf(
			"secret %s with id %s was deleted on this agent and is not created again: create it without an id to make a new one", sec.Name, sec.ID))
		return
	case err != nil:
		s.internalError(w, "create secret", err)
		return
	}
	s.logger.Info("secret created", "user", sec.Owner, "name", sec.Name, "type", sec.Type, "id", sec.ID)
	// A run's token gets no digests: a workload could test guesses at
	// the values of secrets its run was not given.
	writeJSON(w, http.StatusCreated, secretOut(created, tok.RunID == ""))
}

// decodeSecret reads and validates a secret of tok's user from the request
// body, answering the request itself when it is not valid.
func (s *Server) decodeSecret(w http.ResponseWriter, r *http.Request, tok *store.Token) (sec *store.Secret, noCheck, ok bool) {
	var req api.CreateSecretRequest
	if !decodeJSON(w, r, &req) {
		return nil, false, false
	}
	if err := req.Validate(); err != nil {
		code := api.CodeInvalid
		var size *api.SizeError
		if errors.As(err, &size) {
			code = api.CodeTooLarge
		}
		writeError(w, code, err.Error())
		return nil, false, false
	}
	return &store.Secret{
		ID:        req.ID,
		Name:      req.Name,
		Type:      req.Type,
		Owner:     tok.User,
		CreatedAt: req.CreatedAt.UTC(),
		Fields:    req.Fields,
		Data:      req.Data,
		From:      req.From,
	}, req.NoCheck, true
}

// malformedReference says why the provider of a secret's reference says
// it is malformed, or "" when it takes it, or cannot say now: a run checks
// it again when it resolves it.
func (s *Server) malformedReference(ctx context.Context, sec *store.Secret) string {
	provider, ref := api.SplitReference(sec.From)
	problem, err := s.refs.Validate(ctx, provider, ref)
	if err != nil {
		s.logger.Warn("could not have a reference checked by its provider; it is stored unchecked", "secret", sec.Name, "provider", provider, "error", err)
		return ""
	}
	if problem == "" {
		return ""
	}
	return fmt.Sprintf("secret %s: provider %s says the reference %q is malformed: %s; fix it, or pass --no-check to store it anyway",
		sec.Name, provider, ref, problem)
}

// unknownProvider says why a secret's reference names a provider this
// agent does not have, or "" when it has it: every run given the secret
// would fail at start.
func (s *Server) unknownProvider(sec *store.Secret) string {
	provider, _ := api.SplitReference(sec.From)
	var have []string
	if s.refs != nil {
		have = s.refs.Providers()
	}
	if slices.Contains(have, provider) {
		return ""
	}
	list := "it has none"
	if len(have) > 0 {
		list = "it has " + strings.Join(have, ", ")
	}
	return fmt.Sprintf("secret %s: this agent has no provider plugin named %q (%s; `hush get plugins` lists them): "+
		"fix the reference, or pass --no-check to store it for a cluster that will get the plugin later", sec.Name, provider, list)
}

// digestSecret answers the digest of a declared secret's content, so that
// a client can compare it with a stored secret's digest. Nothing is stored.
func (s *Server) digestSecret(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if tok.RunID != "" {
		writeError(w, api.CodeForbidden, "a run's token cannot digest secrets: use your own token")
		return
	}
	sec, _, ok := s.decodeSecret(w, r, tok)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, &api.SecretDigest{Digest: s.store.Digest(sec)})
}

// exportSecret answers one secret with its values, for its owner to copy it
// to another cluster. A run's token cannot export: a workload gets the
// secrets it was given, and no way to read others.
func (s *Server) exportSecret(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if tok.RunID != "" {
		writeError(w, api.CodeForbidden, "a run's token cannot export secrets: use your own token")
		return
	}
	sec, err := s.store.GetSecret(tok.User, r.PathValue("name"))
	if !s.storeOK(w, r, err) {
		return
	}
	s.logger.Info("secret exported", "user", sec.Owner, "name", sec.Name, "id", sec.ID)
	writeJSON(w, http.StatusOK, &api.SecretExport{
		ID: sec.ID, CreatedAt: sec.CreatedAt, Name: sec.Name, Type: sec.Type,
		Fields: sec.Fields, Data: sec.Data, From: sec.From,
	})
}

func (s *Server) getSecret(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	name := r.PathValue("name")
	if !tok.InScope(name) {
		// A run sees only the secrets it was given, damaged or not.
		s.storeOK(w, r, store.ErrNotFound)
		return
	}
	m, err := s.store.GetSecretMeta(tok.User, name)
	if !s.storeOK(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, secretOut(m, tok.RunID == ""))
}

// deleteSecret deletes a secret and answers its tombstone. With ?id= it
// deletes only the secret holding that id. With ?user= a management token
// deletes another user's secret, such as one the agent cannot read.
func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if !writeAllowed(w, tok, "delete") {
		return
	}
	name := r.PathValue("name")
	owner := tok.User
	if u := r.URL.Query().Get("user"); u != "" && u != tok.User {
		if !tok.Management {
			writeError(w, api.CodeForbidden, "deleting another user's secret needs a management token, such as the agent's root token")
			return
		}
		owner = u
	}
	grave, err := s.store.DeleteSecret(owner, name, r.URL.Query().Get("id"))
	if errors.Is(err, store.ErrConflict) {
		writeError(w, api.CodeIDMismatch, err.Error())
		return
	}
	if !s.storeOK(w, r, err) {
		return
	}
	s.logger.Info("secret deleted", "user", owner, "name", name, "id", grave.ID, "by", tok.User)
	writeJSON(w, http.StatusOK, tombstoneOut(grave))
}

func (s *Server) listTombstones(w http.ResponseWriter, _ *http.Request, tok *store.Token) {
	if tok.RunID != "" {
		// Tombstones serve cross-cluster sync, which exports values: not
		// a run's business.
		writeError(w, api.CodeForbidden, "a run's token cannot list tombstones: use your own token")
		return
	}
	graves, err := s.store.ListTombstones(tok.User)
	if err != nil {
		s.internalError(w, "list tombstones", err)
		return
	}
	out := &api.ListTombstonesResponse{Tombstones: make([]*api.Tombstone, len(graves))}
	for i, g := range graves {
		out.Tombstones[i] = tombstoneOut(g)
	}
	writeJSON(w, http.StatusOK, out)
}

// storeOK answers the request when err is not nil and reports whether it
// was nil. Another user's secret is simply not found.
func (s *Server) storeOK(w http.ResponseWriter, r *http.Request, err error) bool {
	var unreadable *store.RecordError
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrNotFound):
		writeError(w, api.CodeNotFound, fmt.Sprintf("secret %s not found", r.PathValue("name")))
	case errors.As(err, &unreadable) && errors.Is(err, store.ErrUnknownFormat):
		s.logger.Error("secret was written by a newer hush", "user", unreadable.Owner, "name", unreadable.Name, "error", unreadable.Err)
		writeError(w, api.CodeSecretUnreadable, fmt.Sprintf(
			"secret %s was written by a newer hush than this agent (%v): upgrade the agent; do not delete the secret, which is likely fine",
			unreadable.Name, unreadable.Err))
	case errors.As(err, &unreadable):
		s.logger.Error("secret cannot be read", "user", unreadable.Owner, "name", unreadable.Name, "id", unreadable.ID, "error", unreadable.Err)
		writeError(w, api.CodeSecretUnreadable, fmt.Sprintf(
			"secret %s cannot be read by the agent (%v): delete it with `hush delete secret %s` and create it again",
			unreadable.Name, unreadable.Err, unreadable.Name))
	default:
		s.internalError(w, "read secret", err)
	}
	return false
}
