package runlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/hush-sh/hush/agent/store"
)

// A log's chunks are sealed under a key of the log's own, kept in the
// log's dir sealed under the agent's keyring. The writer, often a process
// other than the agent, thus needs no keyring, only that one key, which
// the agent hands it in a file it removes once read; and a rotation of the
// keyring seals again one small file per log, not every chunk of it.
// Logs from before this key, whose segments begin with segMagicV2, are
// sealed under the keyring itself.

// keyFile is the name of the log's sealed key in the log's dir.
const keyFile = "key"

func keyAAD(id string) []byte { return []byte("logs/" + id + "/" + keyFile) }

// NewKey makes run id's log key: a fresh random key, sealed under kr into
// the log dir dir, which it creates (0700). It returns the key for the
// log's writer.
func NewKey(dir, id string, kr *store.Keyring) ([]byte, error) {
	key, err := store.NewDataKey()
	if err != nil {
		return nil, err
	}
	sealed, err := kr.Seal(key, keyAAD(id))
	if err != nil {
		return nil, fmt.Errorf("seal run log key: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create run log: %w", err)
	}
	if err := store.WriteFileAtomic(filepath.Join(dir, keyFile), sealed, 0o600); err != nil {
		return nil, fmt.Errorf("write run log key: %w", err)
	}
	return key, nil
}

// openKey returns the keyring of run id's log key, sealed under kr in dir.
func openKey(dir, id string, kr *store.Keyring) (*store.Keyring, error) {
	key, err := LoadKey(dir, id, kr)
	if err != nil {
		return nil, err
	}
	return store.KeyringOf(key)
}

// LoadKey returns run id's log key, sealed under kr in dir, for a writer
// that resumes the log.
func LoadKey(dir, id string, kr *store.Keyring) ([]byte, error) {
	sealed, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, fmt.Errorf("read run log key: %w", err)
	}
	key, err := kr.Open(sealed, keyAAD(id))
	if err != nil {
		return nil, fmt.Errorf("open run log key: %w", err)
	}
	return key, nil
}

// WriteKey hands key to the log's writer in another process: it writes it
// to path (0400), a file in the agent's state dir, which workloads cannot
// see and which the writer removes once it has read it.
func WriteKey(path string, key []byte) error {
	if err := os.WriteFile(path, key, 0o400); err != nil {
		os.Remove(path)
		return fmt.Errorf("write run log key: %w", err)
	}
	return nil
}

// takeKey reads the key at path that WriteKey wrote, and removes the file.
func takeKey(path string) (*store.Keyring, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read run log key: %w", err)
	}
	os.Remove(path)
	return store.KeyringOf(key)
}

// KeysUsed returns the ids of the keyring keys that seal run id's log in
// dir: the one that seals its key, or, for a log from before log keys,
// those that seal its chunks.
func KeysUsed(dir, id string) ([]uint32, error) {
	sealed, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err == nil {
		if k, ok := store.KeyOf(sealed); ok {
			return []uint32{k}, nil
		}
		return nil, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read run log key: %w", err)
	}
	var keys []uint32
	err = eachSegment(dir, func(b []byte) (bool, error) {
		return false, eachChunk(b, func(_, _ uint64, sealed []byte) error {
			if k, ok := store.KeyOf(sealed); ok && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
			return nil
		})
	})
	return keys, err
}

// Reseal seals run id's log in dir again under kr's active key, when
// another key sealed it, and reports whether it did. A log with its own key
// has its key file sealed again. A log from before log keys has every
// chunk sealed again, segment by segment, each rewritten whole through a
// rename: a sealed chunk keeps its length, so readers that are part way
// through a segment find the same records at the same places in the new
// file. Such a log must have no writer.
func Reseal(dir, id string, kr *store.Keyring) (bool, error) {
	path := filepath.Join(dir, keyFile)
	sealed, err := os.ReadFile(path)
	switch {
	case err == nil:
		if k, ok := store.KeyOf(sealed); ok && k == kr.ActiveKey() {
			return false, nil
		}
		key, err := kr.Open(sealed, keyAAD(id))
		if err != nil {
			return false, fmt.Errorf("open run log key of run %s: %w", id, err)
		}
		resealed, err := kr.Seal(key, keyAAD(id))
		if err != nil {
			return false, err
		}
		if err := store.WriteFileAtomic(path, resealed, 0o600); err != nil {
			return false, fmt.Errorf("write run log key: %w", err)
		}
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return resealChunks(dir, id, kr)
	default:
		return false, fmt.Errorf("read run log key: %w", err)
	}
}

// resealChunks seals again under kr's active key each chunk of a log from
// before log keys that another key sealed, rewriting the segments that
// hold one.
func resealChunks(dir, id string, kr *store.Keyring) (bool, error) {
	changed := false
	err := eachSegment(dir, func(b []byte) (bool, error) {
		rewrite := false
		err := eachChunk(b, func(seq, off uint64, sealed []byte) error {
			done, err := resealChunk(kr, sealed, logAAD(id, seq, off))
			if err != nil {
				return fmt.Errorf("run log of run %s, record %d: %w", id, seq, err)
			}
			rewrite = rewrite || done
			return nil
		})
		changed = changed || rewrite
		return rewrite, err
	})
	return changed, err
}

// eachSegment calls fn with the bytes of each segment of a log from before
// log keys, and writes them back, whole, through a rename, when fn says it
// changed them.
func eachSegment(dir string, fn func(b []byte) (changed bool, err error)) error {
	segs, err := (&Log{dir: dir}).segments()
	if err != nil {
		return err
	}
	for _, index := range segs {
		path := segPath(dir, index)
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // the cap dropped it
		}
		if err != nil {
			return fmt.Errorf("read run log: %w", err)
		}
		if !bytes.HasPrefix(b, []byte(segMagicV2)) {
			continue
		}
		changed, err := fn(b)
		if err != nil {
			return fmt.Errorf("segment %d: %w", index, err)
		}
		if changed {
			// A writer the caller did not know of would lose what it
			// appends to the file that the rename replaces.
			if fi, err := os.Stat(path); err != nil || fi.Size() != int64(len(b)) {
				return fmt.Errorf("segment %d changed while it was sealed again: does its run still write it?", index)
			}
			if err := store.WriteFileAtomic(path, b, 0o600); err != nil {
				return fmt.Errorf("write run log: %w", err)
			}
		}
	}
	return nil
}

// eachChunk calls fn with each record of a segment, up to the first that
// is not whole; sealed is the record's chunk within b.
func eachChunk(b []byte, fn func(seq, off uint64, sealed []byte) error) error {
	for at := int(segHeader); at+recHead+recTail <= len(b); {
		n := int(binary.BigEndian.Uint32(b[at:]))
		end := at + recHead + n + recTail
		if n > maxRecord || end > len(b) {
			return nil
		}
		seq, off := binary.BigEndian.Uint64(b[at+4:]), binary.BigEndian.Uint64(b[at+12:])
		if err := fn(seq, off, b[at+recHead:at+recHead+n]); err != nil {
			return err
		}
		at = end
	}
	return nil
}

// HasKey reports whether the log in dir has a key of its own.
func HasKey(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, keyFile))
	return err == nil
}

// resealChunk seals sealed again under kr's active key, in place, when
// another key sealed it, and reports whether it did. A chunk sealed again
// keeps its length, so the records around it keep their places.
func resealChunk(kr *store.Keyring, sealed, aad []byte) (bool, error) {
	if k, ok := store.KeyOf(sealed); !ok || k == kr.ActiveKey() {
		return false, nil
	}
	plain, err := kr.Open(sealed, aad)
	if err != nil {
		return false, err
	}
	resealed, err := kr.Seal(plain, aad)
	if err != nil {
		return false, err
	}
	if len(resealed) != len(sealed) {
		return false, fmt.Errorf("sealed again it is %d bytes, not %d", len(resealed), len(sealed))
	}
	copy(sealed, resealed)
	return true, nil
}
