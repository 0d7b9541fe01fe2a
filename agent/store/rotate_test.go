package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// waitKeyState waits until key id of s's keyring is in state.
func waitKeyState(t *testing.T, s *Store, id uint32, state string) KeyStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, err := s.KeyringStatus()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range status {
			if k.ID == id && k.State == state {
				return k
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %d did not become %s within 10s: %+v", id, state, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Records of every kind move to the new key while secrets are written
// alongside; the old key retires, is pruned, and a store opened again
// reads everything.
func TestRotateKeyring(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	for i := range 50 {
		if _, err := s.CreateSecret(envSecret("alice", fmt.Sprintf("s%d", i), fmt.Sprintf("value-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRun(testRun("alice", "01R", "r")); err != nil {
		t.Fatal(err)
	}
	before := waitKeyState(t, s, 1, KeyActive).Records
	s.StartRotation(Rotation{Rate: 100000})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 50 {
			if _, err := s.CreateSecret(envSecret("bob", fmt.Sprintf("s%d", i), "bobs")); err != nil {
				t.Error(err)
			}
		}
	})
	id, err := s.RotateKeyring()
	if err != nil || id != 2 {
		t.Fatalf("rotate: got key %d, %v; want key 2", id, err)
	}
	wg.Wait()
	waitKeyState(t, s, 1, KeyRetired)
	// Bob's 50 secrets are a metadata and a value record each.
	if got := waitKeyState(t, s, 2, KeyActive); got.Records != before+100 {
		t.Errorf("key 2 seals %d records, want the %d key 1 sealed and bob's 100", got.Records, before)
	}
	pruned, err := s.PruneKeyring()
	if err != nil || len(pruned) != 1 || pruned[0] != 1 {
		t.Fatalf("prune: got %v, %v; want key 1 pruned", pruned, err)
	}
	if _, err := s.PruneKeyring(); !errors.Is(err, ErrNothingToPrune) {
		t.Errorf("a second prune: got %v, want ErrNothingToPrune", err)
	}
	s.Close()

	s = openStore(t, dir)
	if keys := s.Keyring().Keys(); len(keys) != 1 || keys[0].ID != 2 || !keys[0].Active {
		t.Fatalf("got keys %+v after reopening, want key 2 alone", keys)
	}
	for i := range 50 {
		sec, err := s.GetSecret("alice", fmt.Sprintf("s%d", i))
		if err != nil || string(sec.Data[api.FieldValue]) != fmt.Sprintf("value-%d", i) {
			t.Fatalf("secret s%d after the rotation: got %v", i, err)
		}
	}
	if _, err := s.GetRun("alice", "01R"); err != nil {
		t.Fatalf("run after the rotation: %v", err)
	}
}

// A damaged record, which no key opens, does not keep the old key from
// retiring, and stays reported as damaged.
func TestRotateKeyringDamagedRecord(t *testing.T) {
	s := openStore(t, t.TempDir())
	for _, n := range []string{"a", "b"} {
		if _, err := s.CreateSecret(envSecret("alice", n, "value-"+n)); err != nil {
			t.Fatal(err)
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketValues).Bucket([]byte("alice"))
		v := bytes.Clone(b.Get([]byte("a")))
		v[len(v)-1] ^= 1
		return b.Put([]byte("a"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.StartRotation(Rotation{})
	if _, err := s.RotateKeyring(); err != nil {
		t.Fatal(err)
	}
	if got := waitKeyState(t, s, 1, KeyRetired); got.Records != 1 || got.Unreadable != 1 {
		t.Errorf("got retired key 1 sealing %d records, %d unreadable; want the one damaged record", got.Records, got.Unreadable)
	}
	if _, err := s.GetSecret("alice", "a"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("damaged secret: got %v, want ErrCorrupt", err)
	}
	if _, err := s.GetSecret("alice", "b"); err != nil {
		t.Errorf("secret b: %v", err)
	}
}

// A rotation interrupted before any record moved goes on when the store
// opens again: the keyring alone says a rotation is under way.
func TestRotationResumesAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if _, err := s.CreateSecret(envSecret("alice", "a", "value-a")); err != nil {
		t.Fatal(err)
	}
	// No rotation work runs: as if the agent died right after the new
	// key was written.
	if _, err := s.RotateKeyring(); err != nil {
		t.Fatal(err)
	}
	if got := waitKeyState(t, s, 1, KeyRotating); got.Records == 0 {
		t.Fatal("key 1 seals nothing before the rotation ran")
	}
	s.Close()
	s = openStore(t, dir)
	s.StartRotation(Rotation{})
	waitKeyState(t, s, 1, KeyRetired)
	if _, err := s.GetSecret("alice", "a"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, KeyringFile))
	if err != nil || !bytes.Contains(b, []byte(`"retired_at"`)) {
		t.Errorf("the keyring file does not record the retirement: %v", err)
	}
}

// The run CA, which outlives agents as runs do, moves to the new key too.
func TestRotateKeyringRunCA(t *testing.T) {
	s := openStore(t, t.TempDir())
	cert, _, err := s.RunCA()
	if err != nil {
		t.Fatal(err)
	}
	s.StartRotation(Rotation{})
	if _, err := s.RotateKeyring(); err != nil {
		t.Fatal(err)
	}
	waitKeyState(t, s, 1, KeyRetired)
	var sealed []byte
	s.db.View(func(tx *bolt.Tx) error {
		sealed = bytes.Clone(tx.Bucket(bucketMeta).Get(keyRunCA))
		return nil
	})
	if id, ok := KeyOf(sealed); !ok || id != 2 {
		t.Fatalf("the run CA is sealed under key %d, want 2", id)
	}
	again, _, err := s.RunCA()
	if err != nil || !bytes.Equal(again, cert) {
		t.Fatalf("the run CA after the rotation: %v, same: %v", err, bytes.Equal(again, cert))
	}
}

// BenchmarkReseal measures a rotation's pass over 2000 secrets (4000
// records) with no rate bound: b.N passes, each after a new rotation.
func BenchmarkReseal(b *testing.B) {
	s, err := Open(b.TempDir(), hclog.NewNullLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := range 2000 {
		if _, err := s.CreateSecret(envSecret("alice", fmt.Sprintf("s%d", i), "value")); err != nil {
			b.Fatal(err)
		}
	}
	r := &rotator{cfg: Rotation{Rate: 1 << 30}}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if _, err := s.RotateKeyring(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n, err := s.reseal(context.Background(), r)
		if err != nil || n < 4000 {
			b.Fatalf("pass sealed %d records again, %v", n, err)
		}
	}
	b.ReportMetric(float64(4000*b.N)/b.Elapsed().Seconds(), "records/s")
}

// A retired key found sealing a record again, as a restored backup
// would bring back, is not pruned: it goes back to rotating, and the
// record moves to the active key.
func TestPruneKeepsKeyThatSealsAgain(t *testing.T) {
	s := openStore(t, t.TempDir())
	if _, err := s.CreateSecret(envSecret("alice", "a", "value-a")); err != nil {
		t.Fatal(err)
	}
	var old []byte
	s.db.View(func(tx *bolt.Tx) error {
		old = bytes.Clone(tx.Bucket(bucketValues).Bucket([]byte("alice")).Get([]byte("a")))
		return nil
	})
	s.StartRotation(Rotation{})
	if _, err := s.RotateKeyring(); err != nil {
		t.Fatal(err)
	}
	waitKeyState(t, s, 1, KeyRetired)
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketValues).Bucket([]byte("alice")).Put([]byte("a"), old)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PruneKeyring(); !errors.Is(err, ErrNothingToPrune) || !strings.Contains(err.Error(), "1 (1 records)") {
		t.Fatalf("prune with key 1 sealing a record again: got %v, want a refusal naming it", err)
	}
	waitKeyState(t, s, 1, KeyRetired)
	if _, err := s.PruneKeyring(); err != nil {
		t.Fatalf("prune once the record moved: %v", err)
	}
	if sec, err := s.GetSecret("alice", "a"); err != nil || string(sec.Data[api.FieldValue]) != "value-a" {
		t.Fatalf("the secret after prune: %v", err)
	}
}

// A temporary keyring file, left by a crash part way through a write, may
// hold pruned keys: the next open removes it.
func TestOpenRemovesKeyringTemps(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	s.Close()
	tmp := filepath.Join(dir, "."+KeyringFile+".tmp-123")
	if err := os.WriteFile(tmp, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	openStore(t, dir)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the leftover %s is still there: %v", tmp, err)
	}
}
