package store

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

// TokenPrefix starts every token, so that secret scanners and people can
// tell a hush token when they see one.
const TokenPrefix = "hush_"

// Token is an ACL token as stored: the token itself is never kept, only its
// SHA-256 hash, which is the record's key.
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
	return s.commits.write(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketTokens)
		if bk.Get(tok.Hash) != nil {
			return fmt.Errorf("token: %w", ErrExists)
		}
		return bk.Put(tok.Hash, b)
	})
}

// LookupToken finds the token for secret. The lookup is by hash, so the
// time it takes can tell an attacker nothing about stored tokens; the final
// comparison is constant-time all the same.
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
	return s.issueToken(&Token{User: user, Management: management, Description: description})
}

// IssueRunToken creates a token for a run, acting as the run's owner
// within scope: the names of the secrets the run was given.
func (s *Store) IssueRunToken(user, runID string, scope []string, secretsWrite bool) (string, *Token, error) {
	return s.issueToken(&Token{User: user, RunID: runID, Description: "run " + runID,
		Scope: scope, SecretsWrite: secretsWrite})
}

// RevokeRunTokens deletes every token issued to a run.
func (s *Store) RevokeRunTokens(runID string) error {
	return s.commits.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		var doomed [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var tok Token
			if err := json.Unmarshal(v, &tok); err != nil {
				return err
			}
			if tok.RunID == runID {
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
	})
}

func (s *Store) issueToken(tok *Token) (string, *Token, error) {
	secret, err := mintToken(tok)
	if err != nil {
		return "", nil, err
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
