package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// sealedAt is where a record sealed under the keyring lies: its bucket,
// as the names from the root down, and its key.
type sealedAt struct {
	path [][]byte
	key  []byte
}

// metaSealed are the records of the meta bucket sealed under the keyring,
// by key, with their additional data. Each is the sealed bytes alone.
var metaSealed = map[string][]byte{
	string(keyCheck): checkAAD,
	string(keyRunCA): runCAAAD,
}

// sealedRecord says how a record at path and key holds what the keyring
// sealed: the length of the unsealed prefix before it and the additional
// data it was sealed with. ok is false for a record that holds nothing
// sealed in a format this agent knows; such records are left alone.
// values reads a value record's secret id from the record beside it.
func (s *Store) sealedRecord(tx *bolt.Tx, path [][]byte, key, v []byte) (prefix int, aad []byte, ok bool) {
	if len(v) == 0 {
		return 0, nil, false
	}
	switch {
	case len(path) == 1 && bytes.Equal(path[0], bucketMeta):
		aad, ok := metaSealed[string(key)]
		return 0, aad, ok
	case len(path) == 2 && bytes.Equal(path[0], bucketSecrets):
		owner, name := string(path[1]), string(key)
		switch v[0] {
		case formatLegacy:
			return 0, secretAAD(owner, name), true
		case formatV2:
			n, k := binary.Uvarint(v[1:])
			if k <= 0 || uint64(len(v)-1-k) < n {
				return 0, nil, false
			}
			return 1 + k + int(n), metaAAD(owner, name, v[1+k:1+k+int(n)]), true
		}
	case len(path) == 2 && bytes.Equal(path[0], bucketValues):
		owner, name := string(path[1]), string(key)
		var h *secretHeader
		if secrets := tx.Bucket(bucketSecrets).Bucket(path[1]); secrets != nil {
			h = s.recordHeader(owner, name, secrets.Get(key))
		}
		if h == nil || v[0] != formatV2 {
			return 0, nil, false
		}
		return 1, valueAAD(owner, name, h.ID), true
	case len(path) == 2 && bytes.Equal(path[0], bucketRuns):
		if v[0] == formatRunV3 {
			return 1, runAAD(string(path[1]), string(key)), true
		}
	case len(path) == 3 && bytes.Equal(path[0], bucketRunEvents):
		if v[0] == formatRunV3 && len(key) == 8 {
			return 1, eventAAD(string(path[1]), string(path[2]), binary.BigEndian.Uint64(key)), true
		}
	}
	return 0, nil, false
}

// sealedTrees are the buckets that hold sealed records, with the depth of
// the sub-buckets above the records.
var sealedTrees = []struct {
	name  []byte
	depth int
}{
	{bucketMeta, 0}, {bucketSecrets, 1}, {bucketValues, 1}, {bucketRuns, 1}, {bucketRunEvents, 2},
}

// eachSealed calls fn with each record sealed under the keyring, and the
// id of the key that sealed it.
func (s *Store) eachSealed(tx *bolt.Tx, fn func(at sealedAt, key uint32) error) error {
	var walk func(b *bolt.Bucket, path [][]byte, depth int) error
	walk = func(b *bolt.Bucket, path [][]byte, depth int) error {
		if depth > 0 {
			return b.ForEachBucket(func(name []byte) error {
				return walk(b.Bucket(name), append(path[:len(path):len(path)], name), depth-1)
			})
		}
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return nil
			}
			prefix, _, ok := s.sealedRecord(tx, path, k, v)
			if !ok {
				return nil
			}
			id, ok := KeyOf(v[prefix:])
			if !ok {
				return nil
			}
			return fn(sealedAt{path: path, key: k}, id)
		})
	}
	for _, t := range sealedTrees {
		if b := tx.Bucket(t.name); b != nil {
			if err := walk(b, [][]byte{t.name}, t.depth); err != nil {
				return err
			}
		}
	}
	return nil
}

// bucketAt returns the bucket at path, or nil when it is gone.
func bucketAt(tx *bolt.Tx, path [][]byte) *bolt.Bucket {
	b := tx.Bucket(path[0])
	for _, name := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(name)
	}
	return b
}

// resealRecords seals again, under the active key, the records at the
// given places that another key sealed, in one write. A record changed or
// deleted since it was sealed again is left as it now is, for the next
// pass; one that does not open is left as it is (reads report it) and
// counted in failed.
func (s *Store) resealRecords(batch []sealedAt) (resealed, failed int, err error) {
	defer s.sealing()()
	active := s.keyring.ActiveKey()
	var changes []resealChange
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, at := range batch {
			b := bucketAt(tx, at.path)
			if b == nil {
				continue
			}
			v := b.Get(at.key)
			prefix, aad, ok := s.sealedRecord(tx, at.path, at.key, v)
			if !ok {
				continue
			}
			if id, ok := KeyOf(v[prefix:]); !ok || id == active {
				continue
			}
			plain, err := s.keyring.Open(v[prefix:], aad)
			if err != nil {
				failed++
				continue
			}
			sealed, err := s.keyring.Seal(plain, aad)
			if err != nil {
				return err
			}
			changes = append(changes, resealChange{Path: at.path, Key: at.key, Old: bytes.Clone(v), New: append(bytes.Clone(v[:prefix]), sealed...)})
		}
		return nil
	})
	if err != nil || len(changes) == 0 {
		return 0, failed, err
	}
	err = s.apply(&command{Op: opReseal, Reseal: changes, SealedWith: active}, &resealed)
	return resealed, failed, err
}

// applyReseal puts each change's New record in place of its Old one, where
// the record is still Old, and returns how many it put.
func applyReseal(tx *bolt.Tx, c *command) (int, error) {
	n := 0
	for _, ch := range c.Reseal {
		b := bucketAt(tx, ch.Path)
		if b == nil || !bytes.Equal(b.Get(ch.Key), ch.Old) {
			continue
		}
		if err := b.Put(ch.Key, ch.New); err != nil {
			return n, fmt.Errorf("write %s: %w", bytes.Join(append(ch.Path, ch.Key), []byte("/")), err)
		}
		n++
	}
	return n, nil
}
