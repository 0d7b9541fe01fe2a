package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// minTokenTTL is the shortest TTL a token may be given: shorter ones
// would expire before anyone could use them.
const minTokenTTL = time.Second

// expiredMessage says that tok has expired, when, and how to get another.
func expiredMessage(tok *store.Token) string {
	return fmt.Sprintf("token %s of user %s expired at %s: ask an operator for a new one (`hush acl token create --user %s`, with a management token)",
		tok.Accessor, tok.User, tok.ExpiresAt.UTC().Format(time.RFC3339), tok.User)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if !tok.Management {
		writeError(w, api.CodeForbidden, "creating tokens needs a management token, such as the agent's root token")
		return
	}
	var req api.CreateTokenRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if err := api.ValidateUserName(req.User); err != nil {
		writeError(w, api.CodeInvalid, err.Error())
		return
	}
	ttl := time.Duration(req.TTL)
	if ttl != 0 && ttl < minTokenTTL {
		writeFieldError(w, "ttl", fmt.Sprintf("ttl %s is too short: give at least %s, or none for a token that does not expire", ttl, minTokenTTL))
		return
	}
	secret, created, err := s.store.IssueTokenTTL(req.User, req.Description, ttl)
	if err != nil {
		s.internalError(w, "create token", err)
		return
	}
	s.logger.Info("token created", "accessor", created.Accessor, "user", created.User, "by", tok.Accessor)
	out := tokenOut(created, time.Now())
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
}

// tokenOwner returns whose tokens tok may list and revoke: every user's
// ("") with a management token, its own user's otherwise. A run's token
// may do neither: it answers the request and returns false.
func tokenOwner(w http.ResponseWriter, tok *store.Token, verb string) (string, bool) {
	switch {
	case tok.RunID != "":
		writeError(w, api.CodeForbidden, "a run's token cannot "+verb+" tokens: use your own token, outside the run")
		return "", false
	case tok.Management:
		return "", true
	}
	return tok.User, true
}

func (s *Server) listTokens(w http.ResponseWriter, _ *http.Request, tok *store.Token) {
	user, ok := tokenOwner(w, tok, "list")
	if !ok {
		return
	}
	list, err := s.store.ListTokens(user)
	if err != nil {
		s.internalError(w, "list tokens", err)
		return
	}
	now := time.Now()
	out := &api.ListTokensResponse{Tokens: make([]*api.Token, len(list))}
	for i, t := range list {
		out.Tokens[i] = tokenOut(t, now)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	user, ok := tokenOwner(w, tok, "revoke")
	if !ok {
		return
	}
	accessor := r.PathValue("accessor")
	revoked, err := s.store.RevokeToken(accessor, user)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, api.CodeNotFound, fmt.Sprintf("no token with accessor %s that you may revoke: `hush acl token list` shows them", accessor))
		return
	case errors.Is(err, store.ErrLastManagement):
		writeError(w, api.CodeLastManagementToken, fmt.Sprintf("token %s is the agent's only management token: "+
			"revoking it would leave nobody able to manage the agent; make another first (`hush operator root-token regenerate`)", accessor))
		return
	case err != nil:
		s.internalError(w, "revoke token", err)
		return
	}
	s.logger.Info("token revoked", "accessor", revoked.Accessor, "user", revoked.User, "by", tok.Accessor)
	w.WriteHeader(http.StatusNoContent)
}
