package api

import (
	"context"
	"net/http"
	"time"
)

// Keyring key states.
const (
	// KeyActive is the key that seals new records.
	KeyActive = "active"
	// KeyRotating is an older key that still seals records, which a
	// rotation is sealing again under the active key.
	KeyRotating = "rotating"
	// KeyRetired is an older key that seals nothing any more, which
	// `hush operator keyring prune` removes.
	KeyRetired = "retired"
)

// KeyringKey describes one key of an agent's keyring, never its bytes.
type KeyringKey struct {
	ID        uint32     `json:"id"`
	State     string     `json:"state"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	// Records counts what the key seals: records and run logs.
	Records int `json:"records"`
	// Unreadable counts those of Records that are damaged: no key opens
	// them, so they do not keep an older key from retiring.
	Unreadable int `json:"unreadable,omitempty"`
}

// Keyring is an agent's keyring, as its operator endpoints answer.
type Keyring struct {
	Keys []*KeyringKey `json:"keys"`
}

// PruneKeyringResponse names the keys a prune removed.
type PruneKeyringResponse struct {
	Pruned []uint32 `json:"pruned"`
}

// Keyring lists the agent's keyring keys (management token).
func (c *Client) Keyring(ctx context.Context) (*Keyring, error) {
	var out Keyring
	return &out, c.do(ctx, http.MethodGet, "/v1/operator/keyring", nil, nil, &out)
}

// RotateKeyring makes a new active key on the agent, which seals older
// records again under it in the background (management token).
func (c *Client) RotateKeyring(ctx context.Context) (*Keyring, error) {
	var out Keyring
	return &out, c.do(ctx, http.MethodPost, "/v1/operator/keyring/rotate", nil, nil, &out)
}

// PruneKeyring removes the agent's retired keys (management token).
func (c *Client) PruneKeyring(ctx context.Context) ([]uint32, error) {
	var out PruneKeyringResponse
	return out.Pruned, c.do(ctx, http.MethodPost, "/v1/operator/keyring/prune", nil, nil, &out)
}
