package store

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

// TokenPrefix starts every token, so that secret scanners and people can
// tell a hush token when they see one.
const TokenPrefix = "hush_"

// Errors of token lookups and revocations; check them with errors.Is.
var (
	// ErrExpired is returned, with the token, by LookupToken for a token
	// past its expiry.
	ErrExpired = errors.New("token expired")
	// ErrLastManagement is returned by RevokeToken for the only
	// management token, which would leave the agent without one.
	ErrLastManagement = errors.New("it is the agent's only management token")
)

// Token is an ACL token as stored: the token itself is never kept, only its
// SHA-256 hash, which is the record's key. Records of older agents lack
// ExpiresAt and LastUsedAt: such tokens never expire, and were never seen
// used.
type Token struct {
	Accessor    string    `json:"accessor"`
	Hash        []byte    `json:"hash"`
	User        string    `json:"user"`
	Management  bool      `json:"management"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// RunID is set on the token a run receives; it is revoked when the run
	// ends, and runs submitted with it record the run as their parent.
	RunID string `json:"run_id,omitempty"`
	// Scope, on a run's token, names the secrets the run was given: the
	// only ones the token can see, and the most a run it launches gets.
	Scope []string `json:"scope,omitempty"`
	// SecretsWrite, on a run's token, lets it create and delete its
	// owner's secrets, as the run's spec granted.
	SecretsWrite bool `json:"secrets_write,omitempty"`
	// ExpiresAt is when the token stops working; zero means never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// LastUsedAt is when the token last authenticated a request, as last
	// flushed (see recordUse); zero means never.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// Expired reports whether the token is past its expiry at now.
func (t *Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// InScope reports whether the token may see the secret name: a person's
// token sees all of its user's secrets, a run's token those its run was
// given (none when its Scope is empty or missing, as on the tokens of runs
// from before scopes), or all of them when its run may write secrets.
func (t *Token) InScope(name string) bool {
	return t.RunID == "" || t.SecretsWrite || slices.Contains(t.Scope, name)
}

func hashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateToken stores tok as the token for secret.
func (s *Store) CreateToken(secret string, tok *Token) error {
	tok.Hash = hashToken(secret)
	b, err := json.Marshal(tok)
	if err != nil {
		return err
	}
	return s.apply(&command{Op: opTokenCreate, Key: tok.Hash, Record: b}, nil)
}

// applyTokenCreate stores token Record under its hash Key.
func applyTokenCreate(tx *bolt.Tx, c *command) error {
	bk := tx.Bucket(bucketTokens)
	if bk.Get(c.Key) != nil {
		return fmt.Errorf("token: %w", ErrExists)
	}
	return bk.Put(c.Key, c.Record)
}

// LookupToken finds the token for secret and records its use. The lookup is
// by hash, so the time it takes can tell an attacker nothing about stored
// tokens; the final comparison is constant-time all the same. A token past
// its expiry is returned with an error matching ErrExpired, so that the
// caller can say when it expired; its use is not recorded.
func (s *Store) LookupToken(secret string) (*Token, error) {
	h := hashToken(secret)
	var tok Token
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get(h)
		if v == nil {
			return fmt.Errorf("token: %w", ErrNotFound)
		}
		return json.Unmarshal(v, &tok)
	})
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(tok.Hash, h) != 1 {
		return nil, fmt.Errorf("token: %w", ErrNotFound)
	}
	now := time.Now()
	if tok.Expired(now) {
		return &tok, fmt.Errorf("token %s: %w at %s", tok.Accessor, ErrExpired, tok.ExpiresAt.UTC().Format(time.RFC3339))
	}
	s.usage.record(h, now)
	return &tok, nil
}

// HasManagementToken reports whether any management token exists.
func (s *Store) HasManagementToken() (bool, error) {
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(_, v []byte) error {
			var tok Token
			if err := json.Unmarshal(v, &tok); err != nil {
				return err
			}
			found = found || tok.Management
			return nil
		})
	})
	return found, err
}

// IssueToken creates a token for user with a fresh random secret and
// returns the secret, which is shown once and never stored.
func (s *Store) IssueToken(user string, management bool, description string) (string, *Token, error) {
	return s.issueToken(&Token{User: user, Management: management, Description: description}, 0)
}

// IssueTokenTTL creates a user's token as IssueToken does, which expires
// ttl from now; a ttl of 0 means never.
func (s *Store) IssueTokenTTL(user, description string, ttl time.Duration) (string, *Token, error) {
	return s.issueToken(&Token{User: user, Description: description}, ttl)
}

// IssueRunToken creates a token for a run, acting as the run's owner
// within scope: the names of the secrets the run was given.
func (s *Store) IssueRunToken(user, runID string, scope []string, secretsWrite bool) (string, *Token, error) {
	return s.issueToken(&Token{User: user, RunID: runID, Description: "run " + runID,
		Scope: scope, SecretsWrite: secretsWrite}, 0)
}

// RevokeRunTokens deletes every token issued to a run.
func (s *Store) RevokeRunTokens(runID string) error {
	return s.apply(&command{Op: opTokenRevokeRun, ID: runID}, nil)
}

// applyTokenRevokeRun deletes the tokens of run ID.
func applyTokenRevokeRun(tx *bolt.Tx, c *command) error {
	b := tx.Bucket(bucketTokens)
	var doomed [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var tok Token
		if err := json.Unmarshal(v, &tok); err != nil {
			return err
		}
		if tok.RunID == c.ID {
			doomed = append(doomed, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// issueToken mints and stores tok, which expires ttl after its creation
// when ttl is not 0.
func (s *Store) issueToken(tok *Token, ttl time.Duration) (string, *Token, error) {
	secret, err := mintToken(tok)
	if err != nil {
		return "", nil, err
	}
	if ttl > 0 {
		tok.ExpiresAt = tok.CreatedAt.Add(ttl)
	}
	if err := s.CreateToken(secret, tok); err != nil {
		return "", nil, err
	}
	return secret, tok, nil
}

// mintToken makes a fresh random secret for tok and gives tok its accessor
// and creation time, without storing it.
func mintToken(tok *Token) (string, error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	tok.Accessor = ulid.Make().String()
	tok.CreatedAt = time.Now().UTC().Truncate(time.Second)
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(raw), nil
}
