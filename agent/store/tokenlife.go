package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

// UsageFlushInterval is how often the times tokens were last used are
// written to disk. A token's use is recorded in memory on every request
// and written at most once per interval, all tokens in one transaction, and
// on Close: recording it on each request would cost a commit, and so an
// fsync, per request. A crash loses at most one interval of it.
const UsageFlushInterval = time.Minute

// tokenUsage holds the times tokens were used since the last flush, by
// token hash.
type tokenUsage struct {
	mu   sync.Mutex
	seen map[string]time.Time
	// stop ends flushUsage, once; done closes when it has ended.
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

func newTokenUsage() *tokenUsage {
	return &tokenUsage{seen: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
}

// record notes that the token with hash h was used at now.
func (u *tokenUsage) record(h []byte, now time.Time) {
	u.mu.Lock()
	u.seen[string(h)] = now.UTC()
	u.mu.Unlock()
}

// lastUsed returns the unflushed time the token with hash h was used.
func (u *tokenUsage) lastUsed(h []byte) (time.Time, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.seen[string(h)]
	return t, ok
}

func (u *tokenUsage) forget(h []byte) {
	u.mu.Lock()
	delete(u.seen, string(h))
	u.mu.Unlock()
}

// flushUsage runs until the store closes, writing the times tokens were
// used every UsageFlushInterval, and once more when it stops.
func (s *Store) flushUsage(logger hclog.Logger) {
	defer close(s.usage.done)
	tick := time.NewTicker(UsageFlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-s.usage.stop:
			if err := s.flushTokenUse(); err != nil {
				logger.Warn("cannot record when tokens were last used", "error", err)
			}
			return
		}
		if err := s.flushTokenUse(); err != nil {
			logger.Warn("cannot record when tokens were last used; trying again later", "error", err)
		}
	}
}

// flushTokenUse writes the times tokens were used since the last flush into
// their records, in one transaction. A token revoked meanwhile stays
// revoked.
func (s *Store) flushTokenUse() error {
	s.usage.mu.Lock()
	pending := make(map[string]time.Time, len(s.usage.seen))
	for h, t := range s.usage.seen {
		pending[h] = t
	}
	s.usage.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	uses := make([]tokenUse, 0, len(pending))
	for h, t := range pending {
		uses = append(uses, tokenUse{Key: []byte(h), At: t})
	}
	if err := s.apply(&command{Op: opTokenTouch, Uses: uses}, nil); err != nil {
		return err
	}
	// A use recorded during the write stays for the next flush.
	s.usage.mu.Lock()
	for h, t := range pending {
		if s.usage.seen[h].Equal(t) {
			delete(s.usage.seen, h)
		}
	}
	s.usage.mu.Unlock()
	return nil
}

// ListTokens returns the tokens of user, or every token when user is "",
// oldest first, with the times they were last used.
func (s *Store) ListTokens(user string) ([]*Token, error) {
	var out []*Token
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var tok Token
			if err := json.Unmarshal(v, &tok); err != nil {
				return fmt.Errorf("decode token: %w", err)
			}
			// A user's listing never shows management tokens, even of a
			// user of the same name as theirs (root).
			if user != "" && (tok.User != user || tok.Management) {
				return nil
			}
			if t, ok := s.usage.lastUsed(k); ok && t.After(tok.LastUsedAt) {
				tok.LastUsedAt = t
			}
			out = append(out, &tok)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].Accessor < out[j].Accessor
	})
	return out, nil
}

// RevokeToken deletes the token with accessor, when it belongs to user or
// user is "", and returns it. Nothing else goes with it: the runs its user
// started, which hold tokens of their own, their secrets, their other
// tokens. It refuses to revoke the only management token (ErrLastManagement),
// and answers ErrNotFound for a token of another user.
func (s *Store) RevokeToken(accessor, user string) (*Token, error) {
	var revoked *Token
	if err := s.apply(&command{Op: opTokenRevoke, ID: accessor, User: user}, &revoked); err != nil {
		return nil, err
	}
	s.usage.forget(revoked.Hash)
	return revoked, nil
}

// applyTokenTouch records the last uses of tokens, Uses by hash, that are
// later than those recorded.
func applyTokenTouch(tx *bolt.Tx, c *command) error {
	b := tx.Bucket(bucketTokens)
	for _, u := range c.Uses {
		h, t := u.Key, u.At
		v := b.Get(h)
		if v == nil {
			continue
		}
		var tok Token
		if err := json.Unmarshal(v, &tok); err != nil {
			return fmt.Errorf("decode token: %w", err)
		}
		if !t.After(tok.LastUsedAt) {
			continue
		}
		tok.LastUsedAt = t
		out, err := json.Marshal(&tok)
		if err != nil {
			return err
		}
		if err := b.Put(h, out); err != nil {
			return err
		}
	}
	return nil
}

// applyTokenRevoke deletes the token of accessor ID, when it belongs to
// User or User is "", and returns it.
func applyTokenRevoke(tx *bolt.Tx, c *command) (*Token, error) {
	accessor, user := c.ID, c.User
	b := tx.Bucket(bucketTokens)
	var key []byte
	var revoked *Token
	managers := 0
	err := b.ForEach(func(k, v []byte) error {
		var tok Token
		if err := json.Unmarshal(v, &tok); err != nil {
			return fmt.Errorf("decode token: %w", err)
		}
		if tok.Management {
			managers++
		}
		if tok.Accessor == accessor {
			key, revoked = append([]byte(nil), k...), &tok
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case revoked == nil || user != "" && (revoked.User != user || revoked.Management):
		return nil, fmt.Errorf("token %s: %w", accessor, ErrNotFound)
	case revoked.Management && managers == 1:
		return nil, fmt.Errorf("revoke token %s: %w", accessor, ErrLastManagement)
	}
	return revoked, b.Delete(key)
}
