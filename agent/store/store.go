// Package store keeps the agent's state in a bbolt file in the data dir:
// secrets, sealed with AES-256-GCM under the keyring; tombstones of deleted
// secrets; runs; and ACL tokens, kept only as SHA-256 hashes.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DBFile is the name of the bbolt file in the data dir.
const DBFile = "hush.db"

// Errors the store returns; check them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrCorrupt  = errors.New("record is corrupt or was tampered with")
	// ErrDeleted is returned when creating a secret whose id was deleted:
	// a tombstone keeps a delete from being undone.
	ErrDeleted = errors.New("was deleted")
	// ErrConflict is returned when a secret does not hold the id a request
	// expects.
	ErrConflict = errors.New("conflict")
)

var (
	bucketSecrets = []byte("secrets")
	bucketTokens  = []byte("tokens")
	bucketRuns    = []byte("runs")
	// bucketTombstones holds, per owner, a record of each deleted secret
	// by id.
	bucketTombstones = []byte("tombstones")
)

// Store is the agent's persistent state. It is safe for concurrent use.
type Store struct {
	db      *bolt.DB
	keyring *Keyring
	logger  hclog.Logger
}

// Open opens the store in dir, creating dir (0700), the keyring and the
// database when they do not exist.
func Open(dir string, logger hclog.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	kr, err := LoadKeyring(filepath.Join(dir, KeyringFile))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, DBFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: another agent is using this data dir; stop it or give a different -data-dir", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSecrets, bucketTokens, bucketRuns, bucketTombstones} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create buckets: %w", err)
	}
	logger.Debug("store opened", "path", path)
	return &Store{db: db, keyring: kr, logger: logger}, nil
}

// Keyring returns the keyring that seals the store's records, for other
// data kept in the data dir, such as run logs.
func (s *Store) Keyring() *Keyring { return s.keyring }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }
