package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// CreateTokenRequest creates a token for a user. Only a management token may
// create tokens.
type CreateTokenRequest struct {
	User        string `json:"user"`
	Description string `json:"description,omitempty"`
	// TTL is how long the token works after its creation; 0 means it
	// never expires.
	TTL Duration `json:"ttl,omitempty"`
}

// Token describes an ACL token. Secret is only set when the token is
// created; listings never carry it.
type Token struct {
	Accessor    string    `json:"accessor"`
	Secret      string    `json:"secret,omitempty"`
	User        string    `json:"user"`
	Management  bool      `json:"management"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// ExpiresAt is when the token stops working; nil means never.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Expired is set on a listed token past its expiry.
	Expired bool `json:"expired,omitempty"`
	// LastUsedAt is when the token last authenticated a request, to within
	// about a minute; nil means never.
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// RunID is set on the token a run was given; it is revoked when the run
	// ends.
	RunID string `json:"run_id,omitempty"`
}

// ListTokensResponse is the answer to listing tokens.
type ListTokensResponse struct {
	Tokens []*Token `json:"tokens"`
}

// CreateToken creates a token for a user. It needs a management token.
func (c *Client) CreateToken(ctx context.Context, req *CreateTokenRequest) (*Token, error) {
	var out Token
	return &out, c.do(ctx, http.MethodPost, "/v1/acl/tokens", nil, req, &out)
}

// ListTokens lists tokens, never their secrets: every token with a
// management token, the caller's user's tokens with a user's token. A run's
// token may not list tokens.
func (c *Client) ListTokens(ctx context.Context) ([]*Token, error) {
	var out ListTokensResponse
	return out.Tokens, c.do(ctx, http.MethodGet, "/v1/acl/tokens", nil, nil, &out)
}

// RevokeToken revokes the token with accessor: any token with a management
// token, one of the caller's user's tokens with a user's token. It revokes
// nothing else: the user's runs, secrets and other tokens stay.
func (c *Client) RevokeToken(ctx context.Context, accessor string) error {
	return c.do(ctx, http.MethodDelete, "/v1/acl/tokens/"+url.PathEscape(accessor), nil, nil, nil)
}
