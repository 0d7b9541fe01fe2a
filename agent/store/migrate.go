package store

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// migrate rewrites the secret records of hush 0.1, each the whole secret
// sealed, as a metadata record and a value record, and marks the store with
// its format, in one transaction. A record that does not open is left as it
// is: reads report it, and its owner can delete it.
func (s *Store) migrate() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		type old struct{ owner, name, rec []byte }
		var olds []old
		secrets := tx.Bucket(bucketSecrets)
		err := secrets.ForEachBucket(func(owner []byte) error {
			return secrets.Bucket(owner).ForEach(func(k, v []byte) error {
				if len(v) > 0 && v[0] == formatLegacy {
					olds = append(olds, old{bytes.Clone(owner), bytes.Clone(k), bytes.Clone(v)})
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketMeta).Put(keyFormat, []byte{formatV2}); err != nil {
			return err
		}
		migrated := 0
		for _, o := range olds {
			owner, name := string(o.owner), string(o.name)
			sec, err := s.openLegacy(o.rec, owner, name)
			if err != nil {
				s.logger.Warn("a secret record cannot be opened; it is left as it is, and its owner can delete it",
					"user", owner, "name", name, "error", err)
				continue
			}
			// The record's key is the truth: a 0.1 record bound to it.
			sec.Owner, sec.Name = owner, name
			meta, value, err := s.encodeSecret(sec, s.Digest(sec))
			if err != nil {
				return err
			}
			if err := s.putSecret(tx, owner, name, meta, value); err != nil {
				return err
			}
			migrated++
		}
		s.logger.Info("migrated secret records to keep metadata apart from values", "count", migrated)
		return nil
	})
}
