package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/hush-sh/hush/sdk/api"

	bolt "go.etcd.io/bbolt"
)

// migrate rewrites the secret records of hush 0.1, each the whole secret
// sealed, as a metadata record and a value record, and marks the store with
// its format, in one transaction with the migration of its runs. A record
// that does not open is left as it is: reads report it, and its owner can
// delete it.
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
		return s.migrateRuns(tx)
	})
}

// storeFormat is the format of a store this agent writes, kept in
// meta/format: 2 keeps secrets' metadata apart from their values, 3 keeps
// runs per owner with a name index and their events apart.
const storeFormat = 3

// migrateRuns moves the run records of stores before format 3, each run
// whole and sealed as the API's run under runs/<id>, to format 3, and marks
// the store with format 3, in tx. A record that does not open is left as
// it is, out of listings, as before.
func (s *Store) migrateRuns(tx *bolt.Tx) error {
	runs := tx.Bucket(bucketRuns)
	type old struct{ id, rec []byte }
	var olds []old
	err := runs.ForEach(func(k, v []byte) error {
		if v != nil {
			olds = append(olds, old{bytes.Clone(k), bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	var moved []*Run
	for _, o := range olds {
		run, err := s.openLegacyRun(string(o.id), o.rec)
		if err != nil {
			s.logger.Warn("a run record cannot be opened; it is left as it is, out of listings", "run_id", string(o.id), "error", err)
			continue
		}
		if err := runs.Delete(o.id); err != nil {
			return err
		}
		moved = append(moved, run)
	}
	// The oldest run of a name keeps it, as lookups by name found the
	// oldest before.
	sort.SliceStable(moved, func(i, j int) bool { return moved[i].CreatedAt.Before(moved[j].CreatedAt) })
	for _, run := range moved {
		rec, err := s.sealRun(run)
		if err != nil {
			return err
		}
		events, err := s.sealEvents(run, 0)
		if err != nil {
			return err
		}
		names, err := tx.Bucket(bucketRunNames).CreateBucketIfNotExists([]byte(run.Owner))
		if err != nil {
			return err
		}
		if names.Get([]byte(run.Name)) == nil {
			if err := names.Put([]byte(run.Name), []byte(run.ID)); err != nil {
				return err
			}
		}
		if err := putRun(tx, run.Owner, run.ID, rec, events, 0); err != nil {
			return err
		}
	}
	if len(moved) > 0 {
		s.logger.Info("migrated run records to keep them per owner, with a name index", "count", len(moved))
	}
	return tx.Bucket(bucketMeta).Put(keyFormat, []byte{storeFormat})
}

// openLegacyRun opens a run record of a store before format 3: the API's
// run, sealed under runs/<id>.
func (s *Store) openLegacyRun(id string, sealed []byte) (*Run, error) {
	plain, err := s.keyring.Open(sealed, legacyRunAAD(id))
	if err != nil {
		return nil, fmt.Errorf("open run %s: %w", id, err)
	}
	var r api.Run
	if err := json.Unmarshal(plain, &r); err != nil {
		return nil, fmt.Errorf("decode run %s: %w: %v", id, ErrCorrupt, err)
	}
	run := &Run{
		ID: id, Name: r.Name, Owner: r.Owner, Image: r.Image, Command: r.Command, Env: r.Env, Secrets: r.Secrets,
		GPUs: r.GPUs, CPUs: r.CPUs, MemoryBytes: r.MemoryBytes, MaxDuration: time.Duration(r.MaxDuration),
		API: r.API, MaxLogBytes: r.MaxLogBytes, Parent: r.Parent, Management: r.Management, SecretLimit: r.SecretLimit,
		Runtime: r.Runtime, Status: r.Status, ExitCode: r.ExitCode, Error: r.Error,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, EndedAt: r.EndedAt,
	}
	for _, e := range r.Events {
		run.Events = append(run.Events, RunEvent{Time: e.Time, Type: EventType(e.Type), Message: e.Message})
	}
	return run, nil
}
