package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

// restoreHint ends the messages about a data dir that lost part of itself.
const restoreHint = "restore the data dir (hush.db and keyring together) from a backup or a snapshot; " +
	"the agent does not start with part of its data, so as not to lose secrets without a word"

var (
	// keyFormat marks a database that holds a hush store; its value is the
	// format of the store's records.
	keyFormat = []byte("format")
	// keyCheck holds a record sealed under the keyring, to tell at start
	// whether the keyring is the one that sealed the store.
	keyCheck  = []byte("keyring-check")
	checkAAD  = []byte("meta/keyring-check")
	checkText = []byte("hush keyring check")
)

// privateModes are the modes of what the data dir holds, by name: no one
// but the agent's user may read them.
var privateModes = map[string]os.FileMode{
	DBFile:        0o600,
	RootTokenFile: 0o600,
	"logs":        0o700,
}

// prepareDir creates the data dir, or tightens the modes of an existing one
// and of what it holds. A dir that holds other things and no store is not
// taken over: it may be someone else's, such as /var/lib given by mistake.
func prepareDir(dir string, logger hclog.Logger) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read data dir: %w", err)
	}
	if stranger := strangerIn(entries); stranger != "" {
		return fmt.Errorf("data dir %s holds %s, but no hush store: give the agent a dir of its own, such as /var/lib/hush (it makes the dir 0700)",
			dir, stranger)
	}
	if err := tighten(dir, 0o700, logger); err != nil {
		return err
	}
	for name, mode := range privateModes {
		if err := tighten(filepath.Join(dir, name), mode, logger); err != nil {
			return err
		}
	}
	return nil
}

// strangerIn returns the name of an entry of a data dir that is not hush's,
// when the dir holds no store (hush.db or keyring), or "": a dir with a
// store is the agent's whatever else it holds, and one without may hold
// only what an agent leaves, such as root.token.
func strangerIn(entries []os.DirEntry) string {
	for _, e := range entries {
		if e.Name() == DBFile || e.Name() == KeyringFile {
			return ""
		}
	}
	for _, e := range entries {
		if _, ok := privateModes[e.Name()]; !ok && !strings.HasPrefix(e.Name(), "."+KeyringFile+".tmp-") && !strings.HasPrefix(e.Name(), "."+RootTokenFile+".tmp-") {
			return e.Name()
		}
	}
	return ""
}

// tighten takes from path's mode what mode does not allow, saying so.
func tighten(path string, mode os.FileMode, logger hclog.Logger) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	old := fi.Mode().Perm()
	if old&^mode == 0 || fi.Mode()&fs.ModeSymlink != 0 {
		return nil
	}
	// Only permission bits go; setgid, sticky and the like stay.
	keep := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if err := os.Chmod(path, keep&^(fs.ModePerm&^mode)); err != nil {
		return fmt.Errorf("tighten the mode of %s from %#o: %w", path, old, err)
	}
	logger.Warn("tightened the mode of a data dir path that other users could reach",
		"path", path, "old_mode", fmt.Sprintf("%#o", old), "new_mode", fmt.Sprintf("%#o", old&mode))
	return nil
}

// checkDBFile refuses a database that is missing or empty in a data dir
// that holds a keyring: bbolt would make a new, empty store of it.
func checkDBFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("store %s is missing, but the data dir holds a keyring, so it held a store: %s", path, restoreHint)
	case err != nil:
		return fmt.Errorf("stat store: %w", err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("store %s is not a file: %s", path, restoreHint)
	case fi.Size() == 0:
		return fmt.Errorf("store %s is empty (0 bytes), but the data dir holds a keyring, so it held a store: %s", path, restoreHint)
	}
	return nil
}

// init checks the database against the keyring, creates what a new store
// lacks, and migrates old records. A new store gets its buckets and format
// marker before its keyring, so that a crash in between leaves a data dir
// that starts.
func (s *Store) init(hasKeyring bool) error {
	path := filepath.Join(s.dir, DBFile)
	keyPath := filepath.Join(s.dir, KeyringFile)
	var initialized, legacy, sealed, marked bool
	var format byte
	s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		// A 0.1 store has no marker, but has its buckets; it gets the
		// marker once its records are migrated.
		if meta != nil {
			if v := meta.Get(keyFormat); len(v) > 0 {
				marked, format = true, v[0]
			}
		}
		legacy = !marked && tx.Bucket(bucketSecrets) != nil
		initialized = marked || legacy
		sealed = meta != nil && meta.Get(keyCheck) != nil || holdsSealed(tx)
		return nil
	})
	switch {
	case hasKeyring && !initialized:
		return fmt.Errorf("store %s holds no hush data, but the data dir holds a keyring, so it held a store: %s", path, restoreHint)
	case format > storeFormat:
		return fmt.Errorf("store %s was written by a newer hush (format %d; this agent reads up to %d): upgrade this agent", path, format, storeFormat)
	case !hasKeyring && sealed:
		return fmt.Errorf("keyring %s is missing, and the store %s holds records sealed with it, which no new keyring can open: "+
			"restore the keyring from a backup of the data dir (it is the file %s)", keyPath, path, KeyringFile)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSecrets, bucketValues, bucketTokens, bucketRuns, bucketRunNames, bucketRunEvents, bucketTombstones, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if legacy || marked {
			return nil
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte{storeFormat})
	})
	if err != nil {
		return fmt.Errorf("create buckets: %w", err)
	}
	if s.keyring, err = loadKeyring(context.Background(), keyPath, s.seal, s.logger); err != nil {
		return err
	}
	if err := s.checkKeyring(); err != nil {
		return err
	}
	switch {
	case legacy:
		return s.migrate()
	case marked && format < storeFormat:
		return s.db.Update(s.migrateRuns)
	}
	return nil
}

// holdsSealed reports whether the store holds a secret or a run.
func holdsSealed(tx *bolt.Tx) bool {
	if runs := tx.Bucket(bucketRuns); runs != nil {
		if k, _ := runs.Cursor().First(); k != nil {
			return true
		}
	}
	found := false
	if secrets := tx.Bucket(bucketSecrets); secrets != nil {
		secrets.ForEachBucket(func(owner []byte) error {
			if k, _ := secrets.Bucket(owner).Cursor().First(); k != nil {
				found = true
			}
			return nil
		})
	}
	return found
}

// checkKeyring refuses a keyring that does not open the store's check
// record. A store without one (new, or from 0.1) gets one, once a record
// it holds, if any, has opened with the keyring.
func (s *Store) checkKeyring() error {
	keyPath := filepath.Join(s.dir, KeyringFile)
	wrong := func(err error) error {
		if errors.Is(err, ErrUnknownFormat) {
			return fmt.Errorf("store %s holds records written by a newer hush (%v): upgrade this agent", filepath.Join(s.dir, DBFile), err)
		}
		return fmt.Errorf("keyring %s does not open the records of store %s (%v): it is not the keyring that sealed them; "+
			"restore that keyring from a backup of the data dir", keyPath, filepath.Join(s.dir, DBFile), err)
	}
	var check []byte
	s.db.View(func(tx *bolt.Tx) error {
		check = bytes.Clone(tx.Bucket(bucketMeta).Get(keyCheck))
		return nil
	})
	if check != nil {
		if _, err := s.keyring.Open(check, checkAAD); err != nil {
			return wrong(err)
		}
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := s.probe(tx); err != nil {
			return wrong(err)
		}
		sealed, err := s.keyring.Seal(checkText, checkAAD)
		if err != nil {
			return err
		}
		return meta.Put(keyCheck, sealed)
	})
}

// errOpened ends probe's walk at the first record that opens.
var errOpened = errors.New("opened")

// probe tries the store's sealed records until one opens with the keyring.
// It fails when there are some and none opens: one damaged record says
// nothing about the keyring, all of them do.
func (s *Store) probe(tx *bolt.Tx) error {
	var last error
	try := func(err error) error {
		if err == nil {
			return errOpened
		}
		last = err
		return nil
	}
	runs := tx.Bucket(bucketRuns)
	err := runs.ForEach(func(k, v []byte) error {
		if v != nil {
			_, err := s.openLegacyRun(string(k), v)
			return try(err)
		}
		return runs.Bucket(k).ForEach(func(id, rec []byte) error {
			_, err := s.openRun(string(k), string(id), rec)
			return try(err)
		})
	})
	if err == nil {
		secrets := tx.Bucket(bucketSecrets)
		err = secrets.ForEachBucket(func(owner []byte) error {
			return secrets.Bucket(owner).ForEach(func(k, v []byte) error {
				_, rerr := s.decodeMeta(string(owner), string(k), v)
				if rerr != nil {
					return try(rerr)
				}
				return try(nil)
			})
		})
	}
	if errors.Is(err, errOpened) {
		return nil
	}
	if err != nil {
		return err
	}
	return last
}
