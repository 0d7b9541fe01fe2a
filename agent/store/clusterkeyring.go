package store

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The keyring is part of the replicated state: every change of its keys
// (a rotation, a key retired or pruned) is a command that carries the
// keyring's file, wrapped by the seal as on disk, and every server that
// applies it makes it its keyring and its keyring file. The servers of a
// cluster thus share their keys, which are never in the log or a snapshot
// but wrapped: the servers must share their seal's key, as Consul's and
// Nomad's servers share their gossip key.

// keyClusterKeyring holds the last keyring a command gave, as its file.
var keyClusterKeyring = []byte("cluster-keyring")

// saveKeyring makes kf the keyring of every server, through the log.
func (s *Store) saveKeyring(kf *keyringFile) error {
	kf.seal = s.seal
	b, err := encodeKeyringFile(kf)
	if err != nil {
		return err
	}
	return s.apply(&command{Op: opKeyringPut, Value: b}, nil)
}

// applyKeyring makes the keyring file Value the store's keyring and
// keyring file. A server whose seal does not open it cannot serve the
// cluster's data, and stops.
func (s *Store) applyKeyring(tx *bolt.Tx, c *command) error {
	kf, _, err := decodeKeyringFile(context.Background(), "the cluster's keyring", c.Value, s.seal)
	if err != nil {
		panic(fmt.Sprintf("this server cannot open the cluster's keyring: %v. The servers of a cluster must share their seal: "+
			"give this one the seal block and key that the others have", err))
	}
	kf.seal = s.seal
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keyClusterKeyring, bytes.Clone(c.Value)); err != nil {
		return err
	}
	if err := writeKeyringFile(s.KeyringPath(), kf); err != nil {
		return err
	}
	if err := s.keyring.install(kf); err != nil {
		return err
	}
	// Every server seals its own files again, and the leader the records.
	s.kickRotation()
	// A server that joined the cluster made a check record under a
	// keyring of its own; the next start makes one under this keyring.
	if check := meta.Get(keyCheck); check != nil {
		if _, err := s.keyring.Open(check, checkAAD); err != nil {
			return meta.Delete(keyCheck)
		}
	}
	return nil
}

// HasClusterKeyring reports whether the log has given the store its
// keyring: a server that joins a cluster writes nothing before.
func (s *Store) HasClusterKeyring() bool {
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
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	return s.saveKeyring(s.keyring.file())
}
