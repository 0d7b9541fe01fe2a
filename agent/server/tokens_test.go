package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

func clientWith(t *testing.T, srv string, secret string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: srv, Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func accessors(list []*api.Token) map[string]*api.Token {
	m := map[string]*api.Token{}
	for _, t := range list {
		m[t.Accessor] = t
	}
	return m
}

func TestCreateTokenTTL(t *testing.T) {
	st, srv := newTestServer(t)
	root := client(t, st, srv, "root")
	ctx := context.Background()

	tok, err := root.CreateToken(ctx, &api.CreateTokenRequest{User: "alice", Description: "ci", TTL: api.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Secret == "" || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(tok.CreatedAt.Add(time.Hour)) || tok.Description != "ci" {
		t.Errorf("got %+v, want a secret, description ci and an expiry an hour after its creation", tok)
	}
	forever, err := root.CreateToken(ctx, &api.CreateTokenRequest{User: "alice"})
	if err != nil || forever.ExpiresAt != nil {
		t.Errorf("no ttl: got expiry %v, %v; want none", forever.ExpiresAt, err)
	}
	for name, ttl := range map[string]time.Duration{"negative": -time.Hour, "too short": time.Millisecond} {
		t.Run(name, func(t *testing.T) {
			_, err := root.CreateToken(ctx, &api.CreateTokenRequest{User: "alice", TTL: api.Duration(ttl)})
			var e *api.Error
			if !errors.As(err, &e) || e.Field != "ttl" || !errors.Is(err, api.ErrInvalid) {
				t.Errorf("got %v, want an invalid request naming the ttl field", err)
			}
		})
	}
}

// TestExpiredTokenRefused: an expired token is refused with its own code
// and a message that says it expired and how to get a new one.
func TestExpiredTokenRefused(t *testing.T) {
	st, srv := newTestServer(t)
	// A TTL of 1ns has passed by the time the token is stored.
	secret, _, err := st.IssueTokenTTL("alice", "", time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	_, err = clientWith(t, srv.URL, secret).ListSecrets(context.Background(), "")
	var e *api.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusUnauthorized || e.Code != api.CodeTokenExpired || !errors.Is(err, api.ErrUnauthorized) {
		t.Fatalf("got %#v, want 401 %s", err, api.CodeTokenExpired)
	}
	for _, want := range []string{"expired at", "hush acl token create --user alice"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q does not say %q", e.Message, want)
		}
	}
}

// TestTokenListAndRevokeReach: a management token lists and revokes every
// token, a user's token only its user's, a run's token none.
func TestTokenListAndRevokeReach(t *testing.T) {
	st, srv := newTestServer(t)
	ctx := context.Background()
	rootSecret, rootTok, _ := st.IssueToken("root", true, "")
	aliceSecret, aliceTok, _ := st.IssueToken("alice", false, "laptop")
	alice2Secret, alice2Tok, _ := st.IssueToken("alice", false, "ci")
	bobSecret, bobTok, _ := st.IssueToken("bob", false, "")
	runSecret, runTok, _ := st.IssueRunToken("alice", "01KB4Z8Y3V6M2Q9T5R7W1X0RUN", nil, false)
	root, alice, alice2, bob, run := clientWith(t, srv.URL, rootSecret), clientWith(t, srv.URL, aliceSecret),
		clientWith(t, srv.URL, alice2Secret), clientWith(t, srv.URL, bobSecret), clientWith(t, srv.URL, runSecret)

	lists := map[string]struct {
		c    *api.Client
		want []*store.Token
	}{
		"management": {root, []*store.Token{rootTok, aliceTok, alice2Tok, bobTok, runTok}},
		"alice":      {alice, []*store.Token{aliceTok, alice2Tok, runTok}},
		"bob":        {bob, []*store.Token{bobTok}},
	}
	for name, tc := range lists {
		t.Run("list as "+name, func(t *testing.T) {
			list, err := tc.c.ListTokens(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := accessors(list)
			if len(got) != len(tc.want) {
				t.Errorf("got %d tokens, want %d", len(got), len(tc.want))
			}
			for _, w := range tc.want {
				if got[w.Accessor] == nil || got[w.Accessor].User != w.User {
					t.Errorf("token %s of %s: got %+v", w.Accessor, w.User, got[w.Accessor])
				}
			}
		})
	}
	if _, err := run.ListTokens(ctx); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("list with a run's token: got %v, want forbidden", err)
	}

	// Listings never carry a token's secret.
	req, _ := http.NewRequest("GET", srv.URL+"/v1/acl/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+rootSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, s := range []string{rootSecret, aliceSecret, alice2Secret, bobSecret, runSecret} {
		if strings.Contains(string(body), s) {
			t.Errorf("the listing holds a token's secret")
		}
	}
	if !strings.Contains(string(body), `"last_used_at"`) {
		t.Errorf("the listing %s does not say when the tokens in use were last used", body)
	}

	revokes := map[string]struct {
		c        *api.Client
		accessor string
		want     error
	}{
		"alice, bob's":             {alice, bobTok.Accessor, api.ErrNotFound},
		"a run, its owner's":       {run, aliceTok.Accessor, api.ErrForbidden},
		"the only management one":  {root, rootTok.Accessor, api.ErrConflict},
		"no such accessor":         {root, "01NOSUCHTOKEN", api.ErrNotFound},
		"bob, his own (then gone)": {bob, bobTok.Accessor, nil},
	}
	for name, tc := range revokes {
		t.Run("revoke as "+name, func(t *testing.T) {
			if err := tc.c.RevokeToken(ctx, tc.accessor); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := bob.ListTokens(ctx); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("bob's revoked token: got %v, want unauthenticated", err)
	}

	// Revoking alice's token leaves her secrets and her other tokens.
	if _, err := alice.CreateSecret(ctx, envRequest("kept")); err != nil {
		t.Fatal(err)
	}
	if err := root.RevokeToken(ctx, aliceTok.Accessor); err != nil {
		t.Fatalf("management revokes alice's token: %v", err)
	}
	if _, err := alice.ListSecrets(ctx, ""); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("alice's revoked token: got %v, want unauthenticated", err)
	}
	if got, err := alice2.ListSecrets(ctx, ""); err != nil || len(got) != 1 || got[0].Name != "kept" {
		t.Errorf("alice's other token: got %v, %v; want her secret kept", got, err)
	}
	if list, err := alice2.ListTokens(ctx); err != nil || accessors(list)[runTok.Accessor] == nil {
		t.Errorf("alice's run's token: got %v, %v; want it kept", list, err)
	}
}
