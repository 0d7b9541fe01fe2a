package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// The store is the state machine of a cluster's Raft log: every server
// applies the log's commands, in order, to its own database. The database
// records the index of the last command applied, in the same transaction
// as the command, so that applying the log again after a restart skips
// what is already applied.

// keyApplied holds the index of the last command applied, big-endian.
var keyApplied = []byte("raft-applied-index")

// Entry is one committed command of a replicated log.
type Entry struct {
	Index uint64
	Cmd   []byte
}

// appliedIndex tells waiters how far the store has applied the log.
type appliedIndex struct {
	mu      sync.Mutex
	idx     uint64
	changed chan struct{}
}

func (a *appliedIndex) set(idx uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.idx = max(a.idx, idx)
	if a.changed != nil {
		close(a.changed)
		a.changed = nil
	}
}

// waitApplied waits until the store has applied the log up to idx.
func (s *Store) waitApplied(ctx context.Context, idx uint64) error {
	for {
		s.applied.mu.Lock()
		if s.applied.idx >= idx {
			s.applied.mu.Unlock()
			return nil
		}
		if s.applied.changed == nil {
			s.applied.changed = make(chan struct{})
		}
		ch := s.applied.changed
		s.applied.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for this server to apply its own write: %w", ctx.Err())
		}
	}
}

// AppliedIndex returns the index of the last command applied.
func (s *Store) AppliedIndex() uint64 {
	var idx uint64
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyApplied); len(v) == 8 {
			idx = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return idx
}

// Apply applies one committed command; see ApplyBatch.
func (s *Store) Apply(index uint64, cmd []byte) []byte {
	return s.ApplyBatch([]Entry{{Index: index, Cmd: cmd}})[0]
}

// ApplyBatch applies committed commands, in order, in as few transactions
// as it can, and returns each one's encoded result. Commands at or below
// the applied index are skipped, with an empty result. A command that
// fails changes nothing, as a write that fails on one agent does; its
// result says why, and the index moves past it all the same.
func (s *Store) ApplyBatch(entries []Entry) [][]byte {
	out := make([][]byte, len(entries))
	applied := s.AppliedIndex()
	var group []*pendingWrite
	last := applied
	for i, e := range entries {
		if e.Index <= applied {
			continue
		}
		last = max(last, e.Index)
		var c command
		if err := json.Unmarshal(e.Cmd, &c); err != nil {
			out[i] = encodeResult(e.Index, nil, fmt.Errorf("%w: command at index %d: %v", ErrUnknownFormat, e.Index, err))
			continue
		}
		group = append(group, &pendingWrite{err: make(chan error, 1), fn: func(tx *bolt.Tx) error {
			v, err := s.applyTx(tx, &c)
			out[i] = encodeResult(e.Index, v, err)
			return err
		}})
	}
	if last == applied {
		return out
	}
	// The index moves with the last transaction, whatever else fails.
	group = append(group, &pendingWrite{err: make(chan error, 1), fn: func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyApplied, binary.BigEndian.AppendUint64(nil, last))
	}})
	commitGroup(s.db, group, s.commits.observe)
	for _, w := range group[:len(group)-1] {
		<-w.err
	}
	if err := <-group[len(group)-1].err; err != nil {
		// The database cannot be written: the log cannot be applied, and
		// serving on would serve a state that is not the log's.
		panic(fmt.Sprintf("store: record the applied index %d: %v", last, err))
	}
	s.applied.set(last)
	return out
}

// Snapshot writes a consistent copy of the whole database to w. It holds
// sealed records only, as the database does.
func (s *Store) Snapshot(w io.Writer) error {
	return s.db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(w)
		return err
	})
}

// Restore replaces the database's contents with a snapshot's, in one
// transaction: readers see the old state or the new one. The keyring that
// sealed the snapshot's records, which it holds wrapped by the seal,
// becomes the store's keyring and keyring file.
//
// The applied index stays where it was when the snapshot's is lower: an
// operator's snapshot of older state is restored at a new index of the
// log, and the entries before that index, which the store already
// applied, must not be applied again over it.
func (s *Store) Restore(r io.Reader) error {
	tmp, err := os.CreateTemp(s.dir, ".restore-*")
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	snap, err := bolt.Open(tmp.Name(), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("restore snapshot: open it: %w", err)
	}
	defer snap.Close()
	kf, wrapped, err := snapshotKeyring(snap, s.seal)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	before := s.AppliedIndex()
	defer func() { s.applied.set(s.AppliedIndex()) }()
	err = snap.View(func(from *bolt.Tx) error {
		return s.db.Update(func(to *bolt.Tx) error {
			var names [][]byte
			to.ForEach(func(name []byte, _ *bolt.Bucket) error {
				names = append(names, bytes.Clone(name))
				return nil
			})
			for _, name := range names {
				if err := to.DeleteBucket(name); err != nil {
					return err
				}
			}
			err := from.ForEach(func(name []byte, b *bolt.Bucket) error {
				dst, err := to.CreateBucket(name)
				if err != nil {
					return err
				}
				return copyBucket(dst, b)
			})
			if err != nil {
				return err
			}
			meta := to.Bucket(bucketMeta)
			if meta == nil {
				return fmt.Errorf("the snapshot has no %s bucket", bucketMeta)
			}
			if v := meta.Get(keyApplied); len(v) != 8 || binary.BigEndian.Uint64(v) < before {
				return meta.Put(keyApplied, binary.BigEndian.AppendUint64(nil, before))
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if kf == nil {
		return nil
	}
	kf.seal = s.seal
	if err := writeKeyringFile(s.KeyringPath(), kf); err != nil {
		return fmt.Errorf("restore snapshot: write its keyring: %w", err)
	}
	if err := s.keyring.install(kf); err != nil {
		return fmt.Errorf("restore snapshot: install its keyring: %w", err)
	}
	s.logger.Info("restored a snapshot and its keyring", "active_key", kf.Active, "wrapped", wrapped)
	return nil
}

// snapshotKeyring returns the cluster keyring that the snapshot db holds,
// opened with seal, or nil when it holds none.
func snapshotKeyring(db *bolt.DB, seal Seal) (*keyringFile, bool, error) {
	var b []byte
	db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			b = bytes.Clone(meta.Get(keyClusterKeyring))
		}
		return nil
	})
	if b == nil {
		return nil, false, nil
	}
	kf, wrapped, err := decodeKeyringFile(context.Background(), "the snapshot's keyring", b, seal)
	if err != nil {
		return nil, false, err
	}
	return kf, wrapped, nil
}

// copyBucket copies what src holds, nested buckets included, into dst.
func copyBucket(dst, src *bolt.Bucket) error {
	return src.ForEach(func(k, v []byte) error {
		if v != nil {
			return dst.Put(bytes.Clone(k), bytes.Clone(v))
		}
		sub, err := dst.CreateBucket(bytes.Clone(k))
		if err != nil {
			return err
		}
		return copyBucket(sub, src.Bucket(k))
	})
}
