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
	"time"

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

// HoldsData reports whether the store holds a secret, a token or a run.
func (s *Store) HoldsData() bool {
	found := false
	s.db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketSecrets, bucketTokens, bucketRuns} {
			if b := tx.Bucket(name); b != nil {
				if k, _ := b.Cursor().First(); k != nil {
					found = true
				}
			}
		}
		return nil
	})
	return found
}

// ForgetAppliedIndex makes the store take the next log it applies as a new
// one, from its first entry: for a cluster of one, which begins a new log
// at each start. Call it before the log is applied.
func (s *Store) ForgetAppliedIndex() error {
	err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyApplied) })
	if err != nil {
		return fmt.Errorf("reset the applied index: %w", err)
	}
	s.applied.mu.Lock()
	s.applied.idx = 0
	s.applied.mu.Unlock()
	return nil
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

// ApplyBatch applies committed commands, strictly in log order, in as few
// transactions as it can, and returns each one's encoded result. Commands
// at or below the applied index are skipped, with an empty result. A
// command that fails changes nothing, as a write that fails on one agent
// does; its result says why, and the index moves past it all the same.
// Every server thus reaches the same state from the same log, however
// raft splits it into batches.
func (s *Store) ApplyBatch(entries []Entry) [][]byte {
	out := make([][]byte, len(entries))
	applied := s.AppliedIndex()
	var run []logCommand
	flush := func() {
		if len(run) > 0 {
			s.applyRun(run)
			run = nil
		}
	}
	for i, e := range entries {
		if e.Index <= applied {
			continue
		}
		lc := logCommand{index: e.Index, out: &out[i]}
		if err := json.Unmarshal(e.Cmd, &lc.cmd); err != nil {
			lc.bad = fmt.Errorf("%w: command at index %d: %v", ErrUnknownFormat, e.Index, err)
		}
		run = append(run, lc)
		// What a keyring change installs after its commit is what the
		// commands after it are checked against: they come after it.
		if lc.cmd.Op == opKeyringPut {
			flush()
		}
	}
	flush()
	return out
}

// logCommand is a command of the log being applied, and where its result
// goes.
type logCommand struct {
	index uint64
	cmd   command
	bad   error // the command could not be decoded
	out   *[]byte
}

// applyRun applies run, in order, committing the commands before the
// first that fails with the failure's index, and so on. The database
// being unwritable stops the server: serving on would serve a state that
// is not the log's.
func (s *Store) applyRun(run []logCommand) {
	for len(run) > 0 {
		failed, failure := -1, error(nil)
		start := time.Now()
		err := s.db.Update(func(tx *bolt.Tx) error {
			for j := range run {
				if err := s.applyLogged(tx, &run[j]); err != nil {
					failed, failure = j, err
					return err
				}
			}
			return putApplied(tx, run[len(run)-1].index)
		})
		if failed < 0 {
			if err != nil {
				panic(fmt.Sprintf("store: apply the log up to index %d: %v", run[len(run)-1].index, err))
			}
			s.afterCommit(run)
			if s.commits.observe != nil {
				s.commits.observe(time.Since(start), len(run))
			}
			return
		}
		// The commands before the failure run again, on the same state,
		// and commit with the failure's index.
		before := run[:failed]
		err = s.db.Update(func(tx *bolt.Tx) error {
			for j := range before {
				if err := s.applyLogged(tx, &before[j]); err != nil {
					return fmt.Errorf("index %d failed when run again: %w", before[j].index, err)
				}
			}
			return putApplied(tx, run[failed].index)
		})
		if err != nil {
			panic(fmt.Sprintf("store: apply the log up to index %d: %v", run[failed].index, err))
		}
		s.afterCommit(before)
		*run[failed].out = encodeResult(run[failed].index, nil, failure)
		s.applied.set(run[failed].index)
		run = run[failed+1:]
	}
}

// applyLogged applies one command of the log in tx and records its result.
func (s *Store) applyLogged(tx *bolt.Tx, lc *logCommand) error {
	if lc.bad != nil {
		return lc.bad
	}
	v, err := s.applyTx(tx, &lc.cmd)
	*lc.out = encodeResult(lc.index, v, err)
	return err
}

// afterCommit does what committed commands ask of this server besides its
// database, and tells waiters how far the log is applied.
func (s *Store) afterCommit(done []logCommand) {
	for _, lc := range done {
		if lc.cmd.Op == opKeyringPut {
			s.installClusterKeyring(lc.cmd.keyring)
		}
	}
	if len(done) > 0 {
		s.applied.set(done[len(done)-1].index)
		s.changed.fire()
	}
}

func putApplied(tx *bolt.Tx, idx uint64) error {
	return tx.Bucket(bucketMeta).Put(keyApplied, binary.BigEndian.AppendUint64(nil, idx))
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
	defer func() { s.applied.set(s.AppliedIndex()); s.changed.fire() }()
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
