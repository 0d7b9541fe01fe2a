package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Each server keeps its runs' logs, sealed under the keyring, in its own
// data dir; no other server sees them. So that a key is retired only once
// no server's files use it, each server reports, through the log, which
// keys seal its files, and a key's count of what it seals takes in every
// server's last report. A server that is down keeps its last report, and
// with it the keys its files used.

// fileKeysPrefix starts the meta keys of the servers' reports.
const fileKeysPrefix = "file-keys/"

// keyUse is how many of a server's files a key seals, and how many of
// those are damaged.
type keyUse struct {
	Key     uint32 `json:"key"`
	Used    int    `json:"used"`
	Damaged int    `json:"damaged,omitempty"`
}

// reportFileKeys puts this server's files' keys in the log, when they
// changed since its last report.
func (s *Store) reportFileKeys(r *rotator) error {
	if r.cfg.Files == nil {
		return nil
	}
	used, damaged, err := r.cfg.Files.KeysUsed()
	if err != nil {
		return err
	}
	var uses []keyUse
	for k, n := range used {
		uses = append(uses, keyUse{Key: k, Used: n, Damaged: damaged[k]})
	}
	slices.SortFunc(uses, func(a, b keyUse) int { return int(a.Key) - int(b.Key) })
	b, err := json.Marshal(uses)
	if err != nil {
		return err
	}
	var last []byte
	s.db.View(func(tx *bolt.Tx) error {
		last = bytes.Clone(tx.Bucket(bucketMeta).Get([]byte(fileKeysPrefix + r.cfg.ServerID)))
		return nil
	})
	if bytes.Equal(last, b) {
		return nil
	}
	return s.apply(&command{Op: opFileKeys, ID: r.cfg.ServerID, Record: b}, nil)
}

// applyFileKeys records server ID's report of its files' keys, Record.
func applyFileKeys(tx *bolt.Tx, c *command) error {
	if c.ID == "" {
		return fmt.Errorf("%w: a report of file keys names no server", ErrCorrupt)
	}
	return tx.Bucket(bucketMeta).Put([]byte(fileKeysPrefix+c.ID), bytes.Clone(c.Record))
}

// fileKeys adds up every server's last report into used and damaged.
func fileKeys(tx *bolt.Tx, used, damaged map[uint32]int) error {
	c := tx.Bucket(bucketMeta).Cursor()
	prefix := []byte(fileKeysPrefix)
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var uses []keyUse
		if err := json.Unmarshal(v, &uses); err != nil {
			return fmt.Errorf("read the file keys of server %s: %w", k[len(prefix):], err)
		}
		for _, u := range uses {
			used[u.Key] += u.Used
			damaged[u.Key] += u.Damaged
		}
	}
	return nil
}
