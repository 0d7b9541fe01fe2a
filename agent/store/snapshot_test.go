package store

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// saveSnapshot writes s's operator snapshot file.
func saveSnapshot(t *testing.T, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := s.NewSnapshotWriter(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("got %d bytes written before the first chunk, want none", buf.Len())
	}
	if err := s.Snapshot(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// clusterStore opens a store, sealed when seal is not nil, that writes
// through a log of its own and has put its keyring in it.
func clusterStore(t testing.TB, dir string, seal Seal) *Store {
	t.Helper()
	var opts []Option
	if seal != nil {
		opts = append(opts, WithSeal(seal))
	}
	s, err := Open(dir, hclog.NewNullLogger(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	s.SetReplicator(&testLog{replicas: []*Store{s}})
	if err := s.EnsureClusterKeyring(); err != nil {
		t.Fatal(err)
	}
	return s
}

// A snapshot file restores the state it was saved with, and the keyring
// that sealed it, over later writes and a later rotation; it holds no
// plaintext.
func TestOperatorSnapshotRoundTrip(t *testing.T) {
	for name, sealed := range map[string]bool{"sealed": true, "no seal": false} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var seal Seal
			if sealed {
				seal = newTestSeal(t, "file")
			}
			s := clusterStore(t, dir, seal)
			const canary = "canary-early-3f9a1c"
			if _, err := s.CreateSecret(envSecret("alice", "early", canary)); err != nil {
				t.Fatal(err)
			}
			activeAtSave := s.Keyring().ActiveKey()
			file := saveSnapshot(t, s)
			if bytes.Contains(file, []byte(canary)) {
				t.Fatal("the snapshot file holds a secret's value in plaintext")
			}

			if _, err := s.RotateKeyring(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateSecret(envSecret("alice", "late", "late-value")); err != nil {
				t.Fatal(err)
			}
			indexBefore := s.AppliedIndex()

			sp, err := s.SpoolSnapshot(context.Background(), bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			if got, want := sp.Summary.Secrets, 1; got != want {
				t.Errorf("got %d secrets in the snapshot's summary, want %d", got, want)
			}
			if err := s.Restore(sp.File); err != nil {
				t.Fatal(err)
			}
			// An agent without a seal keeps its keyring to itself, and
			// keeps it over a restore; it still holds the snapshot's keys.
			if got := s.Keyring().ActiveKey(); sealed && got != activeAtSave {
				t.Errorf("got active key %d after the restore, want the snapshot's %d", got, activeAtSave)
			}
			if got := s.AppliedIndex(); got < indexBefore {
				t.Errorf("got applied index %d after the restore, want at least %d, where it was", got, indexBefore)
			}
			if _, err := s.GetSecret("alice", "late"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a secret created after the save: got %v, want ErrNotFound", err)
			}
			s.Close()
			// The restored keyring is the keyring file too.
			if sealed {
				s = openSealed(t, dir, seal, hclog.NewNullLogger())
			} else {
				s = openStore(t, dir)
			}
			defer s.Close()
			got, err := s.GetSecret("alice", "early")
			if err != nil || string(got.Data["value"]) != canary {
				t.Errorf("the restored secret, after a reopen: got %v, want it read", err)
			}
		})
	}
}

// A file that is not a snapshot, was altered, cut short or extended, or
// was saved under another seal's key, is refused before anything changes.
func TestOperatorSnapshotRefused(t *testing.T) {
	seal := newTestSeal(t, "file")
	s := clusterStore(t, t.TempDir(), seal)
	defer s.Close()
	if _, err := s.CreateSecret(envSecret("alice", "kept", "kept-value")); err != nil {
		t.Fatal(err)
	}
	file := saveSnapshot(t, s)
	other := clusterStore(t, t.TempDir(), newTestSeal(t, "file"))
	defer other.Close()
	otherFile := saveSnapshot(t, other)
	plainStore := clusterStore(t, t.TempDir(), nil)
	defer plainStore.Close()

	flip := func(at int) []byte {
		b := bytes.Clone(file)
		b[at] ^= 1
		return b
	}
	tests := map[string]struct {
		file []byte
		want error // nil: any error
	}{
		"not a snapshot":       {file: []byte("SQLite format 3\x00 and so on"), want: ErrNotSnapshot},
		"empty":                {file: nil, want: ErrNotSnapshot},
		"header altered":       {file: flip(20), want: nil},
		"chunk altered":        {file: flip(len(file) / 2), want: ErrSnapshotAltered},
		"last byte altered":    {file: flip(len(file) - 1), want: ErrSnapshotAltered},
		"cut short":            {file: file[:len(file)-100], want: ErrSnapshotAltered},
		"cut after a chunk":    {file: file[:len(file)-(4+16)], want: ErrSnapshotAltered},
		"data appended":        {file: append(bytes.Clone(file), 'x'), want: ErrSnapshotAltered},
		"another cluster seal": {file: otherFile, want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sp, err := s.SpoolSnapshot(context.Background(), bytes.NewReader(tc.file))
			if err == nil {
				sp.Close()
				t.Fatal("got the file accepted, want it refused")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A snapshot of a store with a seal does not open in one without.
	if sp, err := plainStore.SpoolSnapshot(context.Background(), bytes.NewReader(file)); err == nil {
		sp.Close()
		t.Error("an agent without a seal accepted a snapshot saved under one")
	}
	if _, err := s.GetSecret("alice", "kept"); err != nil {
		t.Errorf("the store after refused files: %v", err)
	}
}
