package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// testLog is a replicated log in one process: it numbers commands and
// applies them to every replica, answering with the first one's result.
type testLog struct {
	mu       sync.Mutex
	entries  []Entry
	replicas []*Store
}

func (l *testLog) Apply(_ context.Context, cmd []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := Entry{Index: uint64(len(l.entries) + 1), Cmd: cmd}
	l.entries = append(l.entries, e)
	var first []byte
	for i, r := range l.replicas {
		res := r.ApplyBatch([]Entry{e})[0]
		if i == 0 {
			first = res
		}
	}
	return first, nil
}

// dump returns every key of s's database, nested buckets included, with
// its value.
func dump(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(prefix string, b *bolt.Bucket) error
	walk = func(prefix string, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(prefix+string(k)+"/", b.Bucket(k))
			}
			out[prefix+string(k)] = string(v)
			return nil
		})
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name)+"/", b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameState(t *testing.T, what string, a, b *Store) {
	t.Helper()
	da, db := dump(t, a), dump(t, b)
	for k, v := range da {
		if db[k] != v {
			t.Errorf("%s: %q differs", what, k)
		}
	}
	for k := range db {
		if _, ok := da[k]; !ok {
			t.Errorf("%s: %q is only in the second", what, k)
		}
	}
}

// Every write goes through the log as a command, and replicas that apply
// the same log hold the same state; applying it again changes nothing; a
// snapshot restores the state; errors keep their kind across the log.
func TestReplicatedWrites(t *testing.T) {
	dirA, dirB, dirC := t.TempDir(), t.TempDir(), t.TempDir()
	a := openStore(t, dirA)
	a.Close()
	for _, dir := range []string{dirB, dirC} {
		if err := os.CopyFS(dir, os.DirFS(dirA)); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, KeyringFile), 0o600)
	}
	a, b := openStore(t, dirA), openStore(t, dirB)
	log := &testLog{replicas: []*Store{a, b}}
	a.SetReplicator(log)

	for _, n := range []string{"one", "two", "three"} {
		if _, err := a.CreateSecret(envSecret("alice", n, "value-"+n)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.CreateSecret(envSecret("alice", "one", "again")); !errors.Is(err, ErrExists) {
		t.Errorf("a duplicate through the log: got %v, want ErrExists", err)
	}
	gs := func(name string) *Secret {
		return &Secret{ID: "01J" + name, Name: name, Type: api.TypeGitSSH, Owner: "alice", CreatedAt: time.Now().UTC(),
			Data: map[string][]byte{api.FieldValue: []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n")}}
	}
	if _, err := a.CreateSecret(gs("ssh1")); err != nil {
		t.Fatal(err)
	}
	var unique *UniqueTypeError
	if _, err := a.CreateSecret(gs("ssh2")); !errors.As(err, &unique) || unique.Existing != "ssh1" {
		t.Errorf("a second git-ssh secret through the log: got %v, want a UniqueTypeError naming ssh1", err)
	}
	grave, err := a.DeleteSecret("alice", "two", "")
	if err != nil || grave == nil || grave.ID != "01Jtwo" || grave.DeletedAt.IsZero() {
		t.Fatalf("delete through the log: got %+v, %v", grave, err)
	}
	if err := a.CreateRun(testRun("alice", "01R", "r")); err != nil {
		t.Fatal(err)
	}
	run := testRun("alice", "01R", "r")
	run.Events = append(run.Events, RunEvent{Time: time.Now().UTC(), Type: EventStarted, Message: "started"})
	if err := a.SaveRun(run, len(run.Events)-1, true); err != nil {
		t.Fatal(err)
	}
	secret, tok, err := a.IssueTokenTTL("bob", "bob's", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.LookupToken(secret); err != nil {
		t.Fatal(err)
	}
	if err := a.flushTokenUse(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.RunCA(); err != nil {
		t.Fatal(err)
	}
	revoked, err := a.RevokeToken(tok.Accessor, "")
	if err != nil || revoked.Accessor != tok.Accessor || !bytes.Equal(revoked.Hash, tok.Hash) {
		t.Fatalf("revoke through the log: got %+v, %v", revoked, err)
	}

	sameState(t, "replicas of one log", a, b)
	if got, err := b.GetSecret("alice", "three"); err != nil || string(got.Data[api.FieldValue]) != "value-three" {
		t.Errorf("the replica reads secret three: %v", err)
	}
	if b.AppliedIndex() != uint64(len(log.entries)) {
		t.Errorf("the replica applied up to %d, want %d", b.AppliedIndex(), len(log.entries))
	}

	// A restart applies the log's tail again: nothing changes.
	for _, res := range b.ApplyBatch(log.entries) {
		if len(res) != 0 {
			t.Errorf("an entry applied again answered %s, want nothing", res)
		}
	}
	sameState(t, "a replica after the log is applied again", a, b)

	// A snapshot of one replica restores another.
	var snap bytes.Buffer
	if err := a.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	c := openStore(t, dirC)
	if err := c.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	sameState(t, "a restored snapshot", a, c)
	if entries, _ := filepath.Glob(filepath.Join(dirC, ".restore-*")); len(entries) > 0 {
		t.Errorf("the restore left %v", entries)
	}
}

// Servers made with keyrings of their own share the first leader's once
// it is in the log, and every rotation after it; a stale key is refused.
func TestClusterKeyringShared(t *testing.T) {
	dirB := t.TempDir()
	seal := newTestSeal(t, "file")
	a, b := openSealed(t, t.TempDir(), seal, hclog.NewNullLogger()), openSealed(t, dirB, seal, hclog.NewNullLogger())
	log := &testLog{replicas: []*Store{a, b}}
	a.SetReplicator(log)
	if b.HasClusterKeyring() {
		t.Fatal("a new store has a cluster keyring")
	}
	if err := a.EnsureClusterKeyring(); err != nil {
		t.Fatal(err)
	}
	if !b.HasClusterKeyring() {
		t.Fatal("the replica has no cluster keyring after the leader put its own")
	}
	if _, err := a.CreateSecret(envSecret("alice", "shared", "shared-value")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RotateKeyring(); err != nil {
		t.Fatal(err)
	}
	if b.Keyring().ActiveKey() != a.Keyring().ActiveKey() {
		t.Fatalf("the replica's active key is %d, the leader's %d", b.Keyring().ActiveKey(), a.Keyring().ActiveKey())
	}
	if _, err := a.CreateSecret(envSecret("alice", "after", "after-value")); err != nil {
		t.Fatal(err)
	}
	// A command sealed under a key the keyring does not hold is refused.
	c := &command{Op: opRunCA, Value: []byte("x"), SealedWith: 999}
	raw, _ := json.Marshal(c)
	res, _ := log.Apply(context.Background(), raw)
	if _, err := decodeResult(res, nil); !errors.Is(err, errStaleKey) {
		t.Errorf("a command sealed under key 999: got %s, want errStaleKey", res)
	}
	b.Close()
	b = openSealed(t, dirB, seal, hclog.NewNullLogger())
	for _, name := range []string{"shared", "after"} {
		if _, err := b.GetSecret("alice", name); err != nil {
			t.Errorf("the replica, reopened, reads %s: %v", name, err)
		}
	}
}

// A log applies to the same state however it is split into batches, a
// command that fails in the middle of one included.
func TestApplyBatchesInLogOrder(t *testing.T) {
	dirA := t.TempDir()
	a := openStore(t, dirA)
	a.Close()
	dirB := t.TempDir()
	if err := os.CopyFS(dirB, os.DirFS(dirA)); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dirB, KeyringFile), 0o600)
	a, b := openStore(t, dirA), openStore(t, dirB)
	// Commands as a leader would make them: sealed by a, logged in order.
	log := &testLog{replicas: []*Store{a}}
	a.SetReplicator(log)
	for _, v := range []string{"first", "second"} {
		a.CreateSecret(envSecret("alice", "one", v)) // the second fails: exists
	}
	a.CreateSecret(envSecret("alice", "two", "x"))
	if len(log.entries) != 3 {
		t.Fatalf("got %d log entries, want 3", len(log.entries))
	}
	// b applies the whole log as one batch.
	res := b.ApplyBatch(log.entries)
	if _, err := decodeResult(res[1], nil); !errors.Is(err, ErrExists) {
		t.Errorf("the second create in a batch: got %v, want ErrExists", err)
	}
	sameState(t, "a log applied one command at a time and in one batch", a, b)
}

// fixedFiles are a server's files that keys seal, as its runs' logs are.
type fixedFiles struct {
	mu   sync.Mutex
	used map[uint32]int
}

func (f *fixedFiles) KeysUsed() (map[uint32]int, map[uint32]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.used), nil, nil
}

func (f *fixedFiles) Reseal(context.Context, *Keyring) (int, error) { return 0, nil }

// A key that another server's files still use does not retire until that
// server reports that they no longer do.
func TestRetireWaitsForEveryServersFiles(t *testing.T) {
	seal := newTestSeal(t, "file")
	a, b := openSealed(t, t.TempDir(), seal, hclog.NewNullLogger()), openSealed(t, t.TempDir(), seal, hclog.NewNullLogger())
	log := &testLog{replicas: []*Store{a, b}}
	a.SetReplicator(log)
	b.SetReplicator(log)
	if err := a.EnsureClusterKeyring(); err != nil {
		t.Fatal(err)
	}
	bFiles := &fixedFiles{used: map[uint32]int{1: 3}}
	if err := b.reportFileKeys(&rotator{cfg: Rotation{Files: bFiles, ServerID: "b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RotateKeyring(); err != nil {
		t.Fatal(err)
	}
	r := &rotator{cfg: Rotation{Files: &fixedFiles{}, ServerID: "a", Rate: 1 << 20}}
	if _, err := a.resealPass(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if st := waitKeyState(t, a, 1, KeyRotating); st.Records != 3 {
		t.Errorf("key 1 seals %d things after a's pass, want b's 3 logs", st.Records)
	}
	bFiles.used = map[uint32]int{2: 3}
	if err := b.reportFileKeys(&rotator{cfg: Rotation{Files: bFiles, ServerID: "b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.resealPass(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	waitKeyState(t, a, 1, KeyRetired)
}
