package store

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// Run records are sealed like secrets: a run's env_variables and command
// are the user's business, and a sealed record cannot be moved to another
// run's key.

func runAAD(id string) []byte { return []byte(string(bucketRuns) + "/" + id) }

// PutRun creates or replaces a run record.
func (s *Store) PutRun(run *api.Run) error {
	plain, err := json.Marshal(run)
	if err != nil {
		return err
	}
	sealed, err := s.keyring.Seal(plain, runAAD(run.ID))
	if err != nil {
		return err
	}
	return s.commits.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).Put([]byte(run.ID), sealed)
	})
}

// GetRun reads one run by id.
func (s *Store) GetRun(id string) (*api.Run, error) {
	var run *api.Run
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRuns).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("run %s: %w", id, ErrNotFound)
		}
		var err error
		run, err = s.openRun(id, v)
		return err
	})
	return run, err
}

// ListRuns returns the runs of owner, or of everyone when owner is empty,
// oldest first. Records that cannot be read are logged and left out.
func (s *Store) ListRuns(owner string) ([]*api.Run, error) {
	var out []*api.Run
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
			run, err := s.openRun(string(k), v)
			if err != nil {
				// One damaged record must not hide every run; it stays
				// deletable by id.
				s.logger.Warn("a run record cannot be read; it is left out of listings", "run_id", string(k), "error", err)
				return nil
			}
			if owner == "" || run.Owner == owner {
				out = append(out, run)
			}
			return nil
		})
	})
	// Ids are ULIDs, so key order is creation order; sort all the same in
	// case a client chose ids.
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// DeleteRun removes a run record.
func (s *Store) DeleteRun(id string) error {
	return s.commits.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("run %s: %w", id, ErrNotFound)
		}
		return b.Delete([]byte(id))
	})
}

func (s *Store) openRun(id string, sealed []byte) (*api.Run, error) {
	plain, err := s.keyring.Open(sealed, runAAD(id))
	if err != nil {
		return nil, fmt.Errorf("open run %s: %w", id, err)
	}
	var run api.Run
	if err := json.Unmarshal(plain, &run); err != nil {
		return nil, fmt.Errorf("decode run %s: %w", id, err)
	}
	return &run, nil
}
