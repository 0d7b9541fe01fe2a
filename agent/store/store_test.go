package store

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func envSecret(owner, name, value string) *Secret {
	return &Secret{
		ID: "01J" + name, Name: name, Type: api.TypeEnv, Owner: owner, CreatedAt: time.Now().UTC(),
		Fields: map[string]string{api.FieldKey: "K"},
		Data:   map[string][]byte{api.FieldValue: []byte(value)},
	}
}

func TestSecretsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	for _, sec := range []*Secret{envSecret("alice", "b", "value-b"), envSecret("alice", "a", "value-a"), envSecret("bob", "a", "bobs")} {
		if _, err := s.CreateSecret(sec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateSecret(envSecret("alice", "a", "again")); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate name: got %v, want ErrExists", err)
	}
	got, err := s.GetSecret("alice", "a")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data[api.FieldValue]) != "value-a" {
		t.Errorf("got value %q, want value-a", got.Data[api.FieldValue])
	}
	list, bad, err := s.ListSecrets("alice")
	if err != nil || len(bad) > 0 {
		t.Fatalf("list: %v, %d unreadable", err, len(bad))
	}
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" {
		t.Errorf("got %d secrets, want a and b in order", len(list))
	}
	if _, err := s.DeleteSecret("bob", "b", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting another user's secret: got %v, want ErrNotFound", err)
	}
	if _, err := s.DeleteSecret("alice", "a", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSecret("alice", "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: got %v, want ErrNotFound", err)
	}
	if _, err := s.GetSecret("bob", "a"); err != nil {
		t.Errorf("bob's secret of the same name: %v", err)
	}
}

func TestOneGitSSHPerOwner(t *testing.T) {
	s := openStore(t, t.TempDir())
	key := func(name string) *Secret {
		return &Secret{ID: name, Name: name, Type: api.TypeGitSSH, Owner: "alice",
			Data: map[string][]byte{api.FieldValue: []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n")}}
	}
	if _, err := s.CreateSecret(key("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSecret(key("two")); !errors.Is(err, ErrExists) {
		t.Errorf("second git-ssh secret: got %v, want ErrExists", err)
	}
}

func TestPlaintextNeverOnDisk(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	value := "plaintext-canary-8d1f0c"
	if _, err := s.CreateSecret(envSecret("alice", "canary", value)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(value)) {
			t.Errorf("%s holds the plaintext value", p)
		}
		return nil
	})
}

func TestTamperedRecordFails(t *testing.T) {
	s := openStore(t, t.TempDir())
	if _, err := s.CreateSecret(envSecret("alice", "a", "value")); err != nil {
		t.Fatal(err)
	}
	s.rawUpdate(t, func(b *bolt.Bucket) {
		v := bytes.Clone(b.Get([]byte("a")))
		v[len(v)-1] ^= 1
		b.Put([]byte("a"), v)
	})
	if _, err := s.GetSecret("alice", "a"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("got %v, want ErrCorrupt", err)
	}
}

func TestSwappedRecordFails(t *testing.T) {
	// A record moved to another key (here: another secret's name) must not
	// open there, or someone with write access to the file could make one
	// secret's value be served as another's.
	s := openStore(t, t.TempDir())
	for _, n := range []string{"a", "b"} {
		if _, err := s.CreateSecret(envSecret("alice", n, "value-"+n)); err != nil {
			t.Fatal(err)
		}
	}
	s.rawUpdate(t, func(b *bolt.Bucket) {
		b.Put([]byte("b"), bytes.Clone(b.Get([]byte("a"))))
	})
	if _, err := s.GetSecret("alice", "b"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("got %v, want ErrCorrupt", err)
	}
}

func (s *Store) rawUpdate(t *testing.T, fn func(*bolt.Bucket)) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		fn(tx.Bucket(bucketSecrets).Bucket([]byte("alice")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKeyringPersistsAndIsPrivate(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if _, err := s.CreateSecret(envSecret("alice", "a", "value")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, err := os.Stat(filepath.Join(dir, KeyringFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("keyring mode %v, want 0600", fi.Mode().Perm())
	}
	s2 := openStore(t, dir)
	if _, err := s2.GetSecret("alice", "a"); err != nil {
		t.Errorf("reopened store cannot read its secret: %v", err)
	}
	s2.Close()
	os.Chmod(filepath.Join(dir, KeyringFile), 0o644)
	if _, err := Open(dir, hclog.NewNullLogger()); err == nil {
		t.Error("opened a store whose keyring others can read, want an error")
	}
}

func TestTokens(t *testing.T) {
	s := openStore(t, t.TempDir())
	if ok, _ := s.HasManagementToken(); ok {
		t.Fatal("new store has a management token")
	}
	if err := s.CreateToken("s3cret", &Token{Accessor: "acc", User: "root", Management: true}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.HasManagementToken(); !ok {
		t.Error("HasManagementToken is false after creating one")
	}
	tok, err := s.LookupToken("s3cret")
	if err != nil || tok.User != "root" {
		t.Errorf("got %+v, %v; want root's token", tok, err)
	}
	if _, err := s.LookupToken("s3cret "); !errors.Is(err, ErrNotFound) {
		t.Errorf("wrong token: got %v, want ErrNotFound", err)
	}
}

func TestDeleteLeavesTombstone(t *testing.T) {
	s := openStore(t, t.TempDir())
	sec := envSecret("alice", "a", "value-a")
	if _, err := s.CreateSecret(sec); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteSecret("alice", "a", "01Jother"); !errors.Is(err, ErrConflict) {
		t.Errorf("delete with another id: got %v, want ErrConflict", err)
	}
	grave, err := s.DeleteSecret("alice", "a", sec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if grave.ID != sec.ID || grave.Name != "a" || grave.DeletedAt.IsZero() {
		t.Errorf("got tombstone %+v, want id %s, name a and a time", grave, sec.ID)
	}
	if _, err := s.CreateSecret(envSecret("alice", "a", "value-a")); !errors.Is(err, ErrDeleted) {
		t.Errorf("recreate the deleted id: got %v, want ErrDeleted", err)
	}
	fresh := envSecret("alice", "a", "value-a")
	fresh.ID = "01Jfresh"
	if _, err := s.CreateSecret(fresh); err != nil {
		t.Errorf("recreate under a new id: %v", err)
	}
	graves, err := s.ListTombstones("alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(graves) != 1 || graves[0].ID != sec.ID {
		t.Errorf("got %d tombstones, want the one for %s", len(graves), sec.ID)
	}
	if other, _ := s.ListTombstones("bob"); len(other) != 0 {
		t.Errorf("bob sees %d of alice's tombstones, want 0", len(other))
	}
}

func TestDigest(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	a, b := envSecret("alice", "a", "same"), envSecret("bob", "b", "same")
	if s.Digest(a) != s.Digest(b) {
		t.Error("same content under other names and owners: digests differ, want equal")
	}
	if s.Digest(a) == s.Digest(envSecret("alice", "a", "other")) {
		t.Error("another value: digests equal, want different")
	}
	moved := envSecret("alice", "a", "same")
	moved.Fields[api.FieldKey] = "OTHER"
	if s.Digest(a) == s.Digest(moved) {
		t.Error("another key: digests equal, want different")
	}
	other := openStore(t, t.TempDir())
	if s.Digest(a) == other.Digest(a) {
		t.Error("two agents: digests equal, want each agent's own key")
	}
	before := s.Digest(a)
	s.Close()
	if got := openStore(t, dir).Digest(a); got != before {
		t.Errorf("after reopening: got digest %s, want %s as before", got, before)
	}
}

func TestOldKeyringGetsADigestKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyringFile)
	old := `{"active":1,"keys":[{"id":1,"key":"` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) + `","created_at":"2026-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	first, err := LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if first.Digest([]byte("x")) != again.Digest([]byte("x")) {
		t.Error("the digest key added to an old keyring was not kept")
	}
}
