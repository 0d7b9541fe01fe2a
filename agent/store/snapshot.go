package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// StateSummary counts what a state holds, so that an operator who
// restores a snapshot is told what it replaced and with what.
type StateSummary struct {
	// Index is the applied index of the state.
	Index   uint64 `json:"index"`
	Secrets int    `json:"secrets"`
	Tokens  int    `json:"tokens"`
	Runs    int    `json:"runs"`
}

// Summary counts what the store holds.
func (s *Store) Summary() StateSummary {
	var sum StateSummary
	s.db.View(func(tx *bolt.Tx) error {
		sum = summarize(tx)
		return nil
	})
	return sum
}

func summarize(tx *bolt.Tx) StateSummary {
	var sum StateSummary
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if v := meta.Get(keyApplied); len(v) == 8 {
			sum.Index = binary.BigEndian.Uint64(v)
		}
	}
	sum.Secrets = countRecords(tx.Bucket(bucketSecrets))
	sum.Tokens = countRecords(tx.Bucket(bucketTokens))
	sum.Runs = countRecords(tx.Bucket(bucketRuns))
	return sum
}

// countRecords counts the values in b and its nested buckets.
func countRecords(b *bolt.Bucket) int {
	if b == nil {
		return 0
	}
	n := 0
	b.ForEach(func(k, v []byte) error {
		if v == nil {
			n += countRecords(b.Bucket(k))
		} else {
			n++
		}
		return nil
	})
	return n
}

// SpooledSnapshot is an operator's snapshot file that was read to its end,
// authenticated and checked: the store snapshot inside waits in a
// temporary file of the data dir, which Close removes.
type SpooledSnapshot struct {
	Info    SnapshotInfo
	Summary StateSummary
	// File is the store snapshot, at its start; Size is its length.
	File *os.File
	Size int64
}

// Close removes the temporary file.
func (sp *SpooledSnapshot) Close() error {
	err := sp.File.Close()
	if rerr := os.Remove(sp.File.Name()); err == nil {
		err = rerr
	}
	return err
}

// SpoolSnapshot reads an operator's snapshot file from r and checks all of
// it before any of it is used: every chunk authenticates, the inside is a
// hush store of this format, and its keyring opens with this store's
// seal. A restore that failed half-way would take a server down, so it
// must not begin with a file that cannot be restored.
func (s *Store) SpoolSnapshot(ctx context.Context, r io.Reader) (*SpooledSnapshot, error) {
	info, plain, err := s.OpenSnapshot(ctx, r)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.dir, ".snapshot-*")
	if err != nil {
		return nil, fmt.Errorf("spool snapshot: %w", err)
	}
	sp := &SpooledSnapshot{Info: *info, File: f}
	ok := false
	defer func() {
		if !ok {
			sp.Close()
		}
	}()
	if sp.Size, err = io.Copy(f, plain); err != nil {
		if errors.Is(err, ErrSnapshotAltered) {
			return nil, err
		}
		return nil, fmt.Errorf("spool snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("spool snapshot: %w", err)
	}
	if sp.Summary, err = checkStoreSnapshot(f.Name(), s.seal); err != nil {
		return nil, err
	}
	if err := forgetAppliedIndex(f.Name()); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spool snapshot: %w", err)
	}
	ok = true
	return sp, nil
}

// forgetAppliedIndex removes from the snapshot store at path the index of
// the log it was applied up to: that was another log's, or an older one's,
// and this cluster's log goes on from where it is.
func forgetAppliedIndex(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("spool snapshot: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyApplied) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool snapshot: %w", err)
	}
	return nil
}

// checkStoreSnapshot checks that the bbolt file at path is a hush store of
// this format with a keyring that seal opens, and counts what it holds.
func checkStoreSnapshot(path string, seal Seal) (StateSummary, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return StateSummary{}, fmt.Errorf("check snapshot: its store does not open: %w", err)
	}
	defer db.Close()
	var sum StateSummary
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("it holds no hush store")
		}
		if v := meta.Get(keyFormat); len(v) != 1 || v[0] != storeFormat {
			return fmt.Errorf("%w: its store has format %v, and this agent's is %d: restore it with the hush version that saved it", ErrUnknownFormat, v, storeFormat)
		}
		// An agent without a seal keeps its keyring to itself: its
		// snapshots are of its own store.
		if meta.Get(keyClusterKeyring) == nil && seal != nil {
			return errors.New("it holds no keyring, so its secrets could not be read")
		}
		sum = summarize(tx)
		return nil
	})
	if err != nil {
		return StateSummary{}, fmt.Errorf("check snapshot: %w", err)
	}
	if _, _, err := snapshotKeyring(db, seal); err != nil {
		return StateSummary{}, fmt.Errorf("check snapshot: %w", err)
	}
	return sum, nil
}

// ShareKeyring puts the store's keyring in the log (again). After a
// restore it moves every server's applied index past the restore's, so
// that consistent reads on followers need not wait for the next write. A
// keyring change that came first, from another server or before this one
// applied the restore, wins: the log moved on all the same.
func (s *Store) ShareKeyring() error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	err := s.saveKeyring(s.keyring.file())
	if errors.Is(err, ErrConflict) {
		return nil
	}
	return err
}
