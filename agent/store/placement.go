package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// In a cluster of servers, runs are placed on nodes by the leader's
// scheduler. Each run that waits for a node or runs on one has an entry in
// bucket "placements", by run id, in clear: what the scheduler needs (the
// run's size and constraints, its node) without opening sealed records,
// and what keeps writers of the run's record from undoing each other:
//
//   - the node a run is placed on writes its record and events, and only
//     while the run is placed there, in that attempt;
//   - the servers write it (to place it, to mark it LOST or to put it back
//     in line when its node is lost, to stop it before it was placed) only
//     as of the entry's Version, which every write of the record moves.
//
// The entry goes with the run's last write: once it is done, nothing but
// its deletion writes it again.
var bucketPlacements = []byte("placements")

// Placement is a run's entry in the placements index.
type Placement struct {
	ID    string `json:"id"`
	Owner string `json:"owner"`
	// Node is the id of the node the run is placed on; "" while it waits.
	Node     string `json:"node,omitempty"`
	NodeName string `json:"node_name,omitempty"`
	// Attempt counts the run's placements, from 1 once placed.
	Attempt int `json:"attempt,omitempty"`
	// Version counts the writes of the run's record.
	Version uint64 `json:"version"`
	// Stop, when set, says why the run's owner asked for it to stop: its
	// node stops it.
	Stop string `json:"stop,omitempty"`

	GPUs        int              `json:"gpus,omitempty"`
	CPUs        float64          `json:"cpus,omitempty"`
	MemoryBytes int64            `json:"memory_bytes,omitempty"`
	Runtime     string           `json:"runtime,omitempty"`
	Constraints []api.Constraint `json:"constraints,omitempty"`
	CreatedAt   time.Time        `json:"created_at"`
}

// Guard is what a write of a placed run's record expects of its entry.
type Guard struct {
	Node    string `json:"node"`
	Attempt int    `json:"attempt"`
	// Version, when not 0, is the entry's version the write was made
	// from.
	Version uint64 `json:"version,omitempty"`
}

// Move is where a write of a run's record moves the run: to a node, or
// back in line when Node is "".
type Move struct {
	Node     string `json:"node"`
	NodeName string `json:"node_name,omitempty"`
	Attempt  int    `json:"attempt"`
}

const opRunStop = "run.stop"

func newPlacement(run *Run) *Placement {
	return &Placement{
		ID: run.ID, Owner: run.Owner, Node: run.Node, NodeName: run.NodeName, Attempt: run.Attempt, Version: 1,
		GPUs: run.GPUs, CPUs: run.CPUs, MemoryBytes: run.MemoryBytes, Runtime: run.Runtime,
		Constraints: run.Constraints, CreatedAt: run.CreatedAt,
	}
}

// SaveRunAs writes run's record and its events from the saved-th on, as of
// guard, and moves it as move says, unless move is nil. A run done with it
// leaves the index, and its tokens are revoked. It fails with ErrConflict
// when the run's entry is not as guard expects.
func (s *Store) SaveRunAs(run *Run, saved int, guard Guard, move *Move) error {
	return s.write(func() (*command, error) {
		rec, err := s.sealRun(run)
		if err != nil {
			return nil, err
		}
		events, err := s.sealEvents(run, saved)
		return &command{Op: opRunSave, Owner: run.Owner, ID: run.ID, Record: rec, Events: events, First: uint64(saved),
			Guard: &guard, Move: move, Done: run.Status.Done()}, err
	}, nil)
}

// checkGuard checks run ID's entry against c's guard, and returns it.
func checkGuard(tx *bolt.Tx, c *command) (*Placement, error) {
	p, err := readPlacement(tx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("run %s is not waiting or running (it ended, or was deleted): %w", c.ID, ErrConflict)
	}
	g := c.Guard
	if p.Node != g.Node || p.Attempt != g.Attempt {
		return nil, fmt.Errorf("run %s is in its attempt %d on node %q, not %d on %q: %w", c.ID, p.Attempt, p.NodeName, g.Attempt, g.Node, ErrConflict)
	}
	if g.Version != 0 && p.Version != g.Version {
		return nil, fmt.Errorf("run %s changed since it was read: %w", c.ID, ErrConflict)
	}
	return p, nil
}

// afterSave moves run ID's entry on after a write of its record that c
// guarded.
func afterSave(tx *bolt.Tx, c *command, p *Placement) error {
	if c.Done {
		if err := tx.Bucket(bucketPlacements).Delete([]byte(c.ID)); err != nil {
			return err
		}
		return applyTokenRevokeRun(tx, c)
	}
	p.Version++
	if m := c.Move; m != nil {
		if m.Node == "" && p.Node != "" {
			// Back in line from a lost node: the lost attempt's tokens
			// go, before the next attempt is given its own.
			if err := applyTokenRevokeRun(tx, c); err != nil {
				return err
			}
		}
		p.Node, p.NodeName, p.Attempt = m.Node, m.NodeName, m.Attempt
	}
	return putPlacement(tx, p)
}

// RequestStop asks run id's node to stop it, saying why.
func (s *Store) RequestStop(id, reason string) error {
	return s.write(func() (*command, error) {
		return &command{Op: opRunStop, ID: id, Name: reason}, nil
	}, nil)
}

func applyRunStop(tx *bolt.Tx, c *command) error {
	p, err := readPlacement(tx, c.ID)
	if err != nil {
		return fmt.Errorf("run %s has ended: %w", c.ID, ErrConflict)
	}
	if p.Stop == "" {
		p.Stop = c.Name
	}
	return putPlacement(tx, p)
}

// Placements returns the entries of the runs that wait for a node or run
// on one, oldest first.
func (s *Store) Placements() ([]*Placement, error) {
	var out []*Placement
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPlacements)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var p Placement
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("placement of run %s: %w: %w", k, ErrCorrupt, err)
			}
			out = append(out, &p)
			return nil
		})
	})
	slices.SortStableFunc(out, func(a, b *Placement) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, err
}

// PlacementOf returns run id's entry, or ErrNotFound once it is done.
func (s *Store) PlacementOf(id string) (*Placement, error) {
	var p *Placement
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		p, err = readPlacement(tx, id)
		return err
	})
	return p, err
}

func readPlacement(tx *bolt.Tx, id string) (*Placement, error) {
	b := tx.Bucket(bucketPlacements)
	if b == nil {
		return nil, fmt.Errorf("placement of run %s: %w", id, ErrNotFound)
	}
	v := b.Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("placement of run %s: %w", id, ErrNotFound)
	}
	var p Placement
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("placement of run %s: %w: %w", id, ErrCorrupt, err)
	}
	return &p, nil
}

func putPlacement(tx *bolt.Tx, p *Placement) error {
	b, err := tx.CreateBucketIfNotExists(bucketPlacements)
	if err != nil {
		return err
	}
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return b.Put([]byte(p.ID), v)
}

// signal wakes whoever waits on it at its next fire.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// Changed returns a channel closed at the store's next write, here or, in
// a cluster, wherever the log's next command comes from: blocking queries
// wait on it.
func (s *Store) Changed() <-chan struct{} { return s.changed.wait() }
