package store

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// storedToken reads the record of the token with accessor as it is on disk.
func storedToken(t *testing.T, s *Store, accessor string) *Token {
	t.Helper()
	var found *Token
	s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(_, v []byte) error {
			var tok Token
			if err := json.Unmarshal(v, &tok); err != nil {
				t.Fatal(err)
			}
			if tok.Accessor == accessor {
				found = &tok
			}
			return nil
		})
	})
	if found == nil {
		t.Fatalf("token %s is not stored", accessor)
	}
	return found
}

func TestTokenExpiry(t *testing.T) {
	s := openStore(t, t.TempDir())
	tests := map[string]struct {
		expiresAt time.Time
		wantErr   error
	}{
		"no expiry":     {time.Time{}, nil},
		"in the future": {time.Now().Add(time.Hour), nil},
		"in the past":   {time.Now().Add(-time.Second), ErrExpired},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tok := &Token{User: "alice", ExpiresAt: tc.expiresAt}
			secret, err := mintToken(tok)
			if err != nil {
				t.Fatal(err)
			}
			tok.ExpiresAt = tc.expiresAt // mintToken leaves it, but be sure
			if err := s.CreateToken(secret, tok); err != nil {
				t.Fatal(err)
			}
			got, err := s.LookupToken(secret)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if got == nil || got.Accessor != tok.Accessor {
				t.Errorf("got token %+v, want %s, also when expired", got, tok.Accessor)
			}
			if _, used := s.usage.lastUsed(tok.Hash); used != (tc.wantErr == nil) {
				t.Errorf("use recorded: got %v, want %v", used, tc.wantErr == nil)
			}
		})
	}
}

func TestIssueTokenTTL(t *testing.T) {
	s := openStore(t, t.TempDir())
	_, tok, err := s.IssueTokenTTL("alice", "ci", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok.ExpiresAt, tok.CreatedAt.Add(time.Hour); !got.Equal(want) {
		t.Errorf("got expiry %s, want %s", got, want)
	}
	if got := storedToken(t, s, tok.Accessor); !got.ExpiresAt.Equal(tok.ExpiresAt) || got.Description != "ci" {
		t.Errorf("stored: got %+v, want expiry %s and description ci", got, tok.ExpiresAt)
	}
	_, forever, err := s.IssueTokenTTL("alice", "", 0)
	if err != nil || !forever.ExpiresAt.IsZero() {
		t.Errorf("ttl 0: got expiry %s, %v; want none", forever.ExpiresAt, err)
	}
}

// TestTokenUseIsBatched: using a token commits nothing; the time it was used
// shows in listings at once, and reaches the disk at the flush, or on Close.
func TestTokenUseIsBatched(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	secret, tok, err := s.IssueToken("alice", false, "")
	if err != nil {
		t.Fatal(err)
	}
	txID := func() (id int) {
		s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
		return id
	}
	before := txID()
	for range 100 {
		if _, err := s.LookupToken(secret); err != nil {
			t.Fatal(err)
		}
	}
	if got := txID(); got != before {
		t.Errorf("100 lookups: got transaction id %d, want %d (no commit)", got, before)
	}
	if got := storedToken(t, s, tok.Accessor).LastUsedAt; !got.IsZero() {
		t.Errorf("on disk before the flush: got last used %s, want none", got)
	}
	list, err := s.ListTokens("alice")
	if err != nil || len(list) != 1 || list[0].LastUsedAt.IsZero() {
		t.Fatalf("list: got %v, %v; want alice's token, last used now", list, err)
	}
	used := list[0].LastUsedAt

	if err := s.flushTokenUse(); err != nil {
		t.Fatal(err)
	}
	if got := storedToken(t, s, tok.Accessor).LastUsedAt; !got.Equal(used) {
		t.Errorf("on disk after the flush: got last used %s, want %s", got, used)
	}
	if n := len(s.usage.seen); n != 0 {
		t.Errorf("after the flush: %d uses pending, want 0", n)
	}
	flushed := txID()
	if err := s.flushTokenUse(); err != nil || txID() != flushed {
		t.Errorf("a flush with nothing pending: got %v, transaction %d; want no commit (%d)", err, txID(), flushed)
	}

	// Close writes what is pending.
	time.Sleep(time.Millisecond)
	if _, err := s.LookupToken(secret); err != nil {
		t.Fatal(err)
	}
	s.Close()
	again := openStore(t, dir)
	if got := storedToken(t, again, tok.Accessor).LastUsedAt; !got.After(used) {
		t.Errorf("after Close: got last used %s, want after %s", got, used)
	}
}

func TestListAndRevokeTokens(t *testing.T) {
	s := openStore(t, t.TempDir())
	issue := func(user string, management bool) (string, *Token) {
		t.Helper()
		secret, tok, err := s.IssueToken(user, management, "")
		if err != nil {
			t.Fatal(err)
		}
		return secret, tok
	}
	_, root := issue("root", true)
	alice1Secret, alice1 := issue("alice", false)
	alice2Secret, alice2 := issue("alice", false)
	_, bob := issue("bob", false)
	// A user token of the management tokens' user, root, reaches none of
	// them.
	_, rootUser := issue("root", false)
	_, run, err := s.IssueRunToken("alice", "run1", nil, false)
	if err != nil {
		t.Fatal(err)
	}

	for user, want := range map[string][]string{
		"alice": {alice1.Accessor, alice2.Accessor, run.Accessor},
		"bob":   {bob.Accessor},
		"root":  {rootUser.Accessor},
		"":      {root.Accessor, alice1.Accessor, alice2.Accessor, bob.Accessor, rootUser.Accessor, run.Accessor},
		"carol": nil,
	} {
		list, err := s.ListTokens(user)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, tok := range list {
			got[tok.Accessor] = true
		}
		if len(got) != len(want) {
			t.Errorf("user %q: got %d tokens, want %d", user, len(got), len(want))
		}
		for _, a := range want {
			if !got[a] {
				t.Errorf("user %q: token %s missing", user, a)
			}
		}
	}

	tests := map[string]struct {
		accessor, user string
		wantErr        error
	}{
		"another user's": {bob.Accessor, "alice", ErrNotFound},
		"a management token by a user token of root": {root.Accessor, "root", ErrNotFound},
		"no such accessor":                           {"01NOPE", "", ErrNotFound},
		"the only management token":                  {root.Accessor, "", ErrLastManagement},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := s.RevokeToken(tc.accessor, tc.user); !errors.Is(err, tc.wantErr) {
				t.Errorf("got %v, want %v", err, tc.wantErr)
			}
		})
	}

	got, err := s.RevokeToken(alice1.Accessor, "alice")
	if err != nil || got.Accessor != alice1.Accessor {
		t.Fatalf("revoke alice's token: got %v, %v", got, err)
	}
	if _, err := s.LookupToken(alice1Secret); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoked token: got %v, want ErrNotFound", err)
	}
	if _, err := s.LookupToken(alice2Secret); err != nil {
		t.Errorf("alice's other token: %v", err)
	}
	if _, err := s.RevokeToken(alice1.Accessor, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke twice: got %v, want ErrNotFound", err)
	}
	// With a second management token, the first may go.
	issue("root", true)
	if _, err := s.RevokeToken(root.Accessor, ""); err != nil {
		t.Errorf("revoke one of two management tokens: %v", err)
	}
}

// TestTokensFrom01: the tokens of a data dir written before tokens could
// expire never expire, list, and revoke.
func TestTokensFrom01(t *testing.T) {
	dir := copyDataDir01(t)
	s := openStore(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "alice.token"))
	if err != nil {
		t.Fatal(err)
	}
	alice := string(b[:len(b)-1])
	tok, err := s.LookupToken(alice)
	if err != nil {
		t.Fatalf("alice's token: %v", err)
	}
	if !tok.ExpiresAt.IsZero() || tok.Expired(time.Now().AddDate(100, 0, 0)) {
		t.Errorf("got expiry %s, want none", tok.ExpiresAt)
	}
	list, err := s.ListTokens("")
	if err != nil || len(list) < 2 {
		t.Fatalf("list: got %d tokens, %v; want alice's and root's at least", len(list), err)
	}
	for _, l := range list {
		if l.Accessor == "" || l.CreatedAt.IsZero() || !l.ExpiresAt.IsZero() {
			t.Errorf("got %+v, want an accessor, a creation time and no expiry", l)
		}
	}
	if _, err := s.RevokeToken(tok.Accessor, "alice"); err != nil {
		t.Fatalf("revoke alice's token: %v", err)
	}
	if _, err := s.LookupToken(alice); !errors.Is(err, ErrNotFound) {
		t.Errorf("after revoke: got %v, want ErrNotFound", err)
	}
	if secs, _, err := s.ListSecrets("alice"); err != nil || len(secs) != 4 {
		t.Errorf("alice's secrets after her token's revocation: got %d, %v; want 4", len(secs), err)
	}
}
