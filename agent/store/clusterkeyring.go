package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The keyring is part of the replicated state: every change of its keys
// (a rotation, a key retired or pruned) is a command that carries the
// keyring's file, wrapped by the seal as on disk, and every server that
// applies it makes it its keyring and its keyring file, once the command
// is committed. The servers of a cluster thus share their keys, which are
// never in the log or a snapshot but wrapped: servers must have a seal,
// and share its key, as Consul's and Nomad's servers share their gossip
// key. An agent without a seal (a dev agent) is a cluster of one, and
// keeps its keyring in its keyring file alone.

// keyClusterKeyring holds the last keyring a command gave, as its file.
var keyClusterKeyring = []byte("cluster-keyring")

// saveKeyring makes kf the keyring of every server, through the log. The
// command names the keyring it replaces, so that of two changes made at
// once from the same keyring, one is refused rather than lost. Callers
// hold keysMu.
func (s *Store) saveKeyring(kf *keyringFile) error {
	kf.seal = s.seal
	if s.seal == nil {
		if err := writeKeyringFile(s.KeyringPath(), kf); err != nil {
			return err
		}
		return s.keyring.install(kf)
	}
	b, err := encodeKeyringFile(kf)
	if err != nil {
		return err
	}
	var prev []byte
	s.db.View(func(tx *bolt.Tx) error {
		prev = keyringHash(tx.Bucket(bucketMeta).Get(keyClusterKeyring))
		return nil
	})
	return s.apply(&command{Op: opKeyringPut, Value: b, Record: prev}, nil)
}

// keyringHash names a stored keyring; nil for none.
func keyringHash(b []byte) []byte {
	if b == nil {
		return nil
	}
	h := sha256.Sum256(b)
	return h[:]
}

// applyKeyring stores the keyring file Value as the cluster's, when the
// cluster's keyring is still the one whose hash Record gives. The server
// makes it its keyring once the command is committed (afterCommit).
func (s *Store) applyKeyring(tx *bolt.Tx, c *command) error {
	meta := tx.Bucket(bucketMeta)
	if cur := keyringHash(meta.Get(keyClusterKeyring)); !bytes.Equal(cur, c.Record) {
		return fmt.Errorf("the cluster's keyring changed on another server meanwhile: %w; look at `hush operator keyring list` and try again", ErrConflict)
	}
	kf := s.openClusterKeyring(c.Value)
	c.keyring = kf
	if err := meta.Put(keyClusterKeyring, bytes.Clone(c.Value)); err != nil {
		return err
	}
	// A server that joined the cluster made a check record under a
	// keyring of its own; the next start makes one under this keyring.
	if check := meta.Get(keyCheck); check != nil {
		kr, err := KeyringOfFile(kf)
		if err == nil {
			if _, err := kr.Open(check, checkAAD); err != nil {
				return meta.Delete(keyCheck)
			}
		}
	}
	return nil
}

// openClusterKeyring unwraps a keyring file of the log. A server whose seal
// does not open it cannot serve the cluster's data, and stops.
func (s *Store) openClusterKeyring(b []byte) *keyringFile {
	kf, _, err := decodeKeyringFile(context.Background(), "the cluster's keyring", b, s.seal)
	if err != nil {
		panic(fmt.Sprintf("this server cannot open the cluster's keyring: %v. The servers of a cluster must share their seal: "+
			"give this one the seal block and key that the others have", err))
	}
	kf.seal = s.seal
	return kf
}

// installClusterKeyring makes a committed keyring of the log, as
// applyKeyring opened it, this server's keyring and keyring file, and
// wakes the rotation.
func (s *Store) installClusterKeyring(kf *keyringFile) {
	if err := writeKeyringFile(s.KeyringPath(), kf); err != nil {
		panic(fmt.Sprintf("store: write the cluster's keyring to this server's keyring file: %v", err))
	}
	if err := s.keyring.install(kf); err != nil {
		panic(fmt.Sprintf("store: install the cluster's keyring: %v", err))
	}
	s.kickRotation()
}

// loadClusterKeyring makes the cluster's keyring of the database, when it
// has one, this server's: the database is what the log wrote, and a crash
// can leave the keyring file behind it.
func (s *Store) loadClusterKeyring() {
	var b []byte
	s.db.View(func(tx *bolt.Tx) error {
		b = bytes.Clone(tx.Bucket(bucketMeta).Get(keyClusterKeyring))
		return nil
	})
	if b != nil && s.seal != nil {
		s.installClusterKeyring(s.openClusterKeyring(b))
	}
}

// HasClusterKeyring reports whether the log has given the store its
// keyring: a server that joins a cluster writes nothing before. An agent
// without a seal shares no keyring, and has its own.
func (s *Store) HasClusterKeyring() bool {
	if s.seal == nil {
		return true
	}
	has := false
	s.db.View(func(tx *bolt.Tx) error {
		has = tx.Bucket(bucketMeta).Get(keyClusterKeyring) != nil
		return nil
	})
	return has
}

// EnsureClusterKeyring puts the store's keyring in the log, when the log
// has none: the first leader of a cluster, or of an agent that became a
// cluster of its own, does, so that every server shares its keys.
func (s *Store) EnsureClusterKeyring() error {
	if s.HasClusterKeyring() {
		return nil
	}
	return s.ShareKeyring()
}
