// Package store keeps the agent's state in a bbolt file in the data dir:
// secrets, sealed with AES-256-GCM under the keyring, their metadata apart
// from their values; tombstones of deleted secrets; runs; and ACL tokens,
// kept only as SHA-256 hashes.
package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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
	// ErrLocked is returned by Open when another process, such as a
	// running agent, holds the store.
	ErrLocked = errors.New("the store is in use by another process")
	// ErrInvalid is returned for a request the store cannot act on as
	// asked, such as a node name that several nodes have.
	ErrInvalid = errors.New("invalid request")
)

var (
	bucketSecrets = []byte("secrets")
	// bucketValues holds, per owner and by name, the sealed values of
	// secrets, apart from their metadata in bucketSecrets.
	bucketValues = []byte("values")
	bucketTokens = []byte("tokens")
	bucketRuns   = []byte("runs")
	// bucketTombstones holds, per owner, a record of each deleted secret
	// by id.
	bucketTombstones = []byte("tombstones")
	// bucketMeta holds the store's own records: its format marker and the
	// keyring check.
	bucketMeta = []byte("meta")
)

// Store is the agent's persistent state. It is safe for concurrent use.
type Store struct {
	db      *bolt.DB
	commits *committer
	keyring *Keyring
	// usage holds the times tokens were used, until flushUsage writes them.
	usage   *tokenUsage
	logger  hclog.Logger
	dir     string
	metrics *storeMetrics
	rotator atomic.Pointer[rotator]
	// keysMu orders writes against changes of the keyring's keys: a write
	// holds it for reading from sealing its records to their commit, and
	// a change of keys for writing, so that no record sealed under a key
	// is written after the key was retired or pruned.
	keysMu sync.RWMutex
	// damaged counts, by key, the damaged records and files that a
	// rotation last found.
	damagedMu sync.Mutex
	damaged   map[uint32]int
	// replicator, when set, replicates writes through a cluster's log.
	replicator Replicator
	// applied is how far the store has applied the log.
	applied appliedIndex
	// seal wraps the keyring file; nil keeps it plain.
	seal Seal
	// changed fires after each write.
	changed signal
}

// Open opens the store in dir, creating dir (0700), the database and the
// keyring (0600) when they do not exist, and migrating records of older
// formats. It refuses a data dir that held a store it can no longer read
// as it was: a keyring without its database, a database without the
// keyring that sealed its records, or with another keyring. WithSeal
// keeps the keyring wrapped.
func Open(dir string, logger hclog.Logger, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := prepareDir(dir, logger); err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, KeyringFile)
	path := filepath.Join(dir, DBFile)
	_, err := os.Stat(keyPath)
	hasKeyring := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("stat keyring: %w", err)
	}
	if hasKeyring {
		if err := checkDBFile(path); err != nil {
			return nil, err
		}
	}
	db, err := openBolt(path)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open store %s: %w: stop the agent that uses this data dir, or give a different -data-dir", path, ErrLocked)
	case errors.Is(err, errDamaged):
		return nil, fmt.Errorf("open store %s: %w; %s", path, err, restoreHint)
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// Holding the database, this agent is the only writer of the keyring:
	// a temporary keyring file is a crash's leftover, and may hold keys
	// since pruned, or the keyring unwrapped.
	removeKeyringTemps(dir, logger)
	s := &Store{db: db, logger: logger, dir: dir, usage: newTokenUsage(), seal: o.seal}
	if err := s.init(hasKeyring); err != nil {
		db.Close()
		return nil, err
	}
	s.applied.set(s.AppliedIndex())
	s.loadClusterKeyring()
	s.metrics = newStoreMetrics()
	s.commits = newCommitter(db)
	s.commits.observe = func(d time.Duration, writes int) {
		s.metrics.commitSeconds.Observe(d.Seconds())
		s.metrics.commitWrites.Observe(float64(writes))
	}
	go s.flushUsage(logger)
	logger.Debug("store opened", "path", path)
	return s, nil
}

// errDamaged marks a database file that is not a whole bbolt file.
var errDamaged = errors.New("the file is damaged")

// openBolt opens the bbolt file at path. bbolt panics on some damaged
// files, such as one cut short: that, a file bbolt calls invalid, and one
// smaller than the size its own header gives are reported as errDamaged,
// so that the agent says what is wrong instead of crashing, now or at a
// later read past the file's end.
func openBolt(path string) (db *bolt.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("%w: %v", errDamaged, p)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	switch {
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("%w: %w", errDamaged, err)
	case err != nil:
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		db.Close()
		return nil, err
	}
	var size int64
	db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	if size > fi.Size() {
		db.Close()
		return nil, fmt.Errorf("%w: it is %d bytes, and its pages reach to byte %d (was it cut short?)", errDamaged, fi.Size(), size)
	}
	return db, nil
}

// Keyring returns the keyring that seals the store's records, for other
// data kept in the data dir, such as run logs.
func (s *Store) Keyring() *Keyring { return s.keyring }

// KeyringPath returns the path of the store's keyring file.
func (s *Store) KeyringPath() string { return filepath.Join(s.dir, KeyringFile) }

// Close writes when tokens were last used and closes the database.
func (s *Store) Close() error {
	s.usage.stopOnce.Do(func() { close(s.usage.stop) })
	<-s.usage.done
	s.StopRotation()
	s.commits.close()
	return s.db.Close()
}
