package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// Run records are sealed like secrets: a run's env_variables and command
// are the user's business, and a sealed record cannot be moved to another
// run's key. They are kept per owner, so that finding a run never opens
// another's:
//
//   - bucket "runs", per owner, by id: the run record, format byte 3, then
//     the run without its events, sealed.
//   - bucket "run-names", per owner, by name: the id of the run of that
//     name, so that names are found and checked without opening runs.
//   - bucket "run-events", per owner, per run id, by sequence number (8
//     bytes, big-endian): one record per event, format byte 3, then the
//     event, sealed. An event is appended, never the whole run rewritten.
//
// Stores before format 3 kept each run whole, events and all, sealed as
// the API's run under "runs/<id>"; Open migrates them.
const formatRunV3 = 3

var (
	bucketRunNames  = []byte("run-names")
	bucketRunEvents = []byte("run-events")
)

// Run is a run as the agent keeps it.
type Run struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Owner   string            `json:"owner"`
	Image   string            `json:"image"`
	Command string            `json:"command"`
	Env     map[string]string `json:"env,omitempty"`
	// Secrets names the secrets the run asked for; nil means all.
	Secrets     []string      `json:"secrets"`
	GPUs        int           `json:"gpus,omitempty"`
	CPUs        float64       `json:"cpus,omitempty"`
	MemoryBytes int64         `json:"memory_bytes,omitempty"`
	MaxDuration time.Duration `json:"max_duration,omitempty"`
	// API is what the run's token may do besides managing its own runs.
	API         api.RunAPI `json:"api,omitzero"`
	MaxLogBytes int64      `json:"max_log_bytes,omitempty"`
	MaskSecrets bool       `json:"mask_secrets,omitempty"`
	// Parent is the id of the run that submitted this one, if any.
	Parent string `json:"parent,omitempty"`
	// Management is set on a run submitted with a management token, or by
	// a run that was.
	Management bool `json:"management,omitempty"`
	// SecretLimit, for a run with a Parent, names the secrets its parent
	// was given: the most this run may receive.
	SecretLimit []string      `json:"secret_limit,omitempty"`
	Runtime     string        `json:"runtime"`
	Status      api.RunStatus `json:"status"`
	ExitCode    *int          `json:"exit_code,omitempty"`
	Error       string        `json:"error,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
	StartedAt   *time.Time    `json:"started_at,omitempty"`
	EndedAt     *time.Time    `json:"ended_at,omitempty"`
	// Events are kept in records of their own.
	Events []RunEvent `json:"-"`

	// Devices are the ids of the GPUs the run was given when it was
	// admitted; it holds them while it is active.
	Devices []string `json:"devices,omitempty"`

	// Scheduled is set on a run of a cluster of servers, which the
	// leader places on a node (placement.go); Node and NodeName are that
	// node's, Attempt counts its placements.
	Scheduled bool   `json:"scheduled,omitempty"`
	Node      string `json:"node,omitempty"`
	NodeName  string `json:"node_name,omitempty"`
	Attempt   int    `json:"attempt,omitempty"`
	// Retries is how many times the run is placed again when its node is
	// lost; Constraints must hold on its node's labels.
	Retries     int              `json:"retries,omitempty"`
	Constraints []api.Constraint `json:"constraints,omitempty"`
	// Refresh and SecretRefresh fetch the run's secrets again while it
	// runs (api.Refresh).
	Refresh       api.Refresh            `json:"refresh,omitzero"`
	SecretRefresh map[string]api.Refresh `json:"secret_refresh,omitempty"`
}

// Clone returns a copy of r that shares nothing that changes with r.
func (r *Run) Clone() *Run {
	c := *r
	c.Events = append([]RunEvent(nil), r.Events...)
	return &c
}

// EventType says what kind of thing a run event records.
type EventType string

// The event types the agent records; runtimes add their own, such as
// "image".
const (
	EventSubmitted EventType = "submitted"
	EventStarted   EventType = "started"
	EventWarning   EventType = "warning"
	EventError     EventType = "error"
	EventEnv       EventType = "env"
	EventSecrets   EventType = "secrets"
	EventStopping  EventType = "stopping"
	EventStopped   EventType = "stopped"
	EventExited    EventType = "exited"
	// EventAdopted: a restarted agent found the run's workload and follows
	// it again; EventLost: it found none.
	EventAdopted EventType = "adopted"
	EventLost    EventType = "lost"
	// EventWaiting: the run waits for room (GPUs, CPUs, memory);
	// EventAdmitted: it was given room.
	EventWaiting  EventType = "waiting"
	EventAdmitted EventType = "admitted"
	// EventPlaced: the leader placed the run on a node.
	EventPlaced EventType = "placed"
	// EventChanged: a refresh found new values of the run's secrets, which
	// the event names; EventRestarted: the workload was restarted for them.
	EventChanged   EventType = "changed"
	EventRestarted EventType = "restarted"
)

// RunEvent is one thing that happened to a run.
type RunEvent struct {
	Time    time.Time `json:"time"`
	Type    EventType `json:"type"`
	Message string    `json:"message"`
}

func runAAD(owner, id string) []byte {
	return fmt.Appendf(nil, "%s/%s/%s/v%d", bucketRuns, owner, id, formatRunV3)
}

func eventAAD(owner, id string, seq uint64) []byte {
	return fmt.Appendf(nil, "%s/%s/%s/%d/v%d", bucketRunEvents, owner, id, seq, formatRunV3)
}

// legacyRunAAD is the additional data of a run record before format 3.
func legacyRunAAD(id string) []byte { return []byte(string(bucketRuns) + "/" + id) }

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// CreateRun records a new run and its events. It fails with ErrExists
// when its owner has a run of that name.
func (s *Store) CreateRun(run *Run) error {
	return s.write(func() (*command, error) {
		rec, err := s.sealRun(run)
		if err != nil {
			return nil, err
		}
		events, err := s.sealEvents(run, 0)
		c := &command{Op: opRunCreate, Owner: run.Owner, ID: run.ID, Name: run.Name, Record: rec, Events: events}
		if run.Scheduled {
			c.Placement = newPlacement(run)
		}
		return c, err
	}, nil)
}

// applyRunCreate records run Owner/ID named Name: its sealed Record and
// Events.
func applyRunCreate(tx *bolt.Tx, c *command) error {
	names, err := tx.Bucket(bucketRunNames).CreateBucketIfNotExists([]byte(c.Owner))
	if err != nil {
		return err
	}
	if id := names.Get([]byte(c.Name)); id != nil && string(id) != c.ID {
		return fmt.Errorf("run %s: %w", c.Name, ErrExists)
	}
	if err := names.Put([]byte(c.Name), []byte(c.ID)); err != nil {
		return err
	}
	if c.Placement != nil {
		if err := putPlacement(tx, c.Placement); err != nil {
			return err
		}
	}
	return putRun(tx, c.Owner, c.ID, c.Record, c.Events, 0)
}

// SaveRun appends run's events from the saved-th on and, when record is
// set, rewrites the run's record, in one write. Writing the same events
// again is harmless: each has its own key.
func (s *Store) SaveRun(run *Run, saved int, record bool) error {
	return s.write(func() (*command, error) {
		var rec []byte
		if record {
			var err error
			if rec, err = s.sealRun(run); err != nil {
				return nil, err
			}
		}
		events, err := s.sealEvents(run, saved)
		c := &command{Op: opRunSave, Owner: run.Owner, ID: run.ID, Record: rec, Events: events, First: uint64(saved)}
		if run.Scheduled {
			// The node it runs on, while it runs there (placement.go).
			c.Guard, c.Done = &Guard{Node: run.Node, Attempt: run.Attempt}, run.Status.Done()
		}
		return c, err
	}, nil)
}

// applyRunSave puts run Owner/ID's sealed Record, unless it is nil, and
// its Events from sequence number First on; with a Guard, only when the
// run's placement is as it expects, which it then moves on.
func applyRunSave(tx *bolt.Tx, c *command) error {
	runs := tx.Bucket(bucketRuns).Bucket([]byte(c.Owner))
	if runs == nil || runs.Get([]byte(c.ID)) == nil {
		return fmt.Errorf("run %s: %w", c.ID, ErrNotFound)
	}
	if c.Guard == nil {
		return putRun(tx, c.Owner, c.ID, c.Record, c.Events, c.First)
	}
	p, err := checkGuard(tx, c)
	if err != nil {
		return err
	}
	if err := putRun(tx, c.Owner, c.ID, c.Record, c.Events, c.First); err != nil {
		return err
	}
	return afterSave(tx, c, p)
}

// putRun puts a run's record, unless rec is nil, and its events from
// sequence number first.
func putRun(tx *bolt.Tx, owner, id string, rec []byte, events [][]byte, first uint64) error {
	if rec != nil {
		runs, err := tx.Bucket(bucketRuns).CreateBucketIfNotExists([]byte(owner))
		if err != nil {
			return err
		}
		if err := runs.Put([]byte(id), rec); err != nil {
			return err
		}
	}
	if len(events) == 0 {
		return nil
	}
	byOwner, err := tx.Bucket(bucketRunEvents).CreateBucketIfNotExists([]byte(owner))
	if err != nil {
		return err
	}
	b, err := byOwner.CreateBucketIfNotExists([]byte(id))
	if err != nil {
		return err
	}
	for i, e := range events {
		if err := b.Put(seqKey(first+uint64(i)), e); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) sealRun(run *Run) ([]byte, error) {
	plain, err := json.Marshal(run)
	if err != nil {
		return nil, err
	}
	sealed, err := s.keyring.Seal(plain, runAAD(run.Owner, run.ID))
	if err != nil {
		return nil, err
	}
	return append([]byte{formatRunV3}, sealed...), nil
}

func (s *Store) sealEvents(run *Run, from int) ([][]byte, error) {
	var out [][]byte
	for i := from; i < len(run.Events); i++ {
		plain, err := json.Marshal(&run.Events[i])
		if err != nil {
			return nil, err
		}
		sealed, err := s.keyring.Seal(plain, eventAAD(run.Owner, run.ID, uint64(i)))
		if err != nil {
			return nil, err
		}
		out = append(out, append([]byte{formatRunV3}, sealed...))
	}
	return out, nil
}

// GetRun reads one of owner's runs by id.
func (s *Store) GetRun(owner, id string) (*Run, error) {
	var run *Run
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		run, err = s.readRun(tx, owner, id)
		return err
	})
	return run, err
}

// RunByName reads one of owner's runs by name, through the name index.
func (s *Store) RunByName(owner, name string) (*Run, error) {
	var run *Run
	err := s.db.View(func(tx *bolt.Tx) error {
		id := runIDByName(tx, owner, name)
		if id == "" {
			return fmt.Errorf("run %s: %w", name, ErrNotFound)
		}
		var err error
		run, err = s.readRun(tx, owner, id)
		return err
	})
	return run, err
}

// RunNameTaken reports whether owner has a run named name, without opening
// any run.
func (s *Store) RunNameTaken(owner, name string) (bool, error) {
	var taken bool
	err := s.db.View(func(tx *bolt.Tx) error {
		taken = runIDByName(tx, owner, name) != ""
		return nil
	})
	return taken, err
}

func runIDByName(tx *bolt.Tx, owner, name string) string {
	names := tx.Bucket(bucketRunNames).Bucket([]byte(owner))
	if names == nil {
		return ""
	}
	return string(names.Get([]byte(name)))
}

// readRun opens a run's record and its events.
func (s *Store) readRun(tx *bolt.Tx, owner, id string) (*Run, error) {
	var rec []byte
	if runs := tx.Bucket(bucketRuns).Bucket([]byte(owner)); runs != nil {
		rec = runs.Get([]byte(id))
	}
	if rec == nil {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	run, err := s.openRun(owner, id, rec)
	if err != nil {
		return nil, err
	}
	if run.Events, err = s.readEvents(tx, owner, id); err != nil {
		return nil, err
	}
	return run, nil
}

// openRun opens a run record of format 3.
func (s *Store) openRun(owner, id string, rec []byte) (*Run, error) {
	if len(rec) == 0 {
		return nil, fmt.Errorf("read run %s/%s: %w: empty record", owner, id, ErrCorrupt)
	}
	if rec[0] != formatRunV3 {
		return nil, fmt.Errorf("read run %s/%s: %w: format %d (written by a newer hush?)", owner, id, ErrUnknownFormat, rec[0])
	}
	plain, err := s.keyring.Open(rec[1:], runAAD(owner, id))
	if err != nil {
		return nil, fmt.Errorf("open run %s/%s: %w", owner, id, err)
	}
	var run Run
	if err := json.Unmarshal(plain, &run); err != nil {
		return nil, fmt.Errorf("decode run %s/%s: %w: %v", owner, id, ErrCorrupt, err)
	}
	return &run, nil
}

func (s *Store) readEvents(tx *bolt.Tx, owner, id string) ([]RunEvent, error) {
	byOwner := tx.Bucket(bucketRunEvents).Bucket([]byte(owner))
	if byOwner == nil {
		return nil, nil
	}
	b := byOwner.Bucket([]byte(id))
	if b == nil {
		return nil, nil
	}
	var out []RunEvent
	err := b.ForEach(func(k, v []byte) error {
		if len(k) != 8 || len(v) == 0 {
			return fmt.Errorf("read event of run %s/%s: %w", owner, id, ErrCorrupt)
		}
		seq := binary.BigEndian.Uint64(k)
		if v[0] != formatRunV3 {
			return fmt.Errorf("read event %d of run %s/%s: %w: format %d (written by a newer hush?)", seq, owner, id, ErrUnknownFormat, v[0])
		}
		plain, err := s.keyring.Open(v[1:], eventAAD(owner, id, seq))
		if err != nil {
			return fmt.Errorf("open event %d of run %s/%s: %w", seq, owner, id, err)
		}
		var e RunEvent
		if err := json.Unmarshal(plain, &e); err != nil {
			return fmt.Errorf("decode event %d of run %s/%s: %w: %v", seq, owner, id, ErrCorrupt, err)
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// ListRuns returns the runs of owner, or of everyone when owner is empty,
// oldest first. Records that cannot be read are logged and left out.
func (s *Store) ListRuns(owner string) ([]*Run, error) {
	var out []*Run
	err := s.db.View(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		return runs.ForEachBucket(func(o []byte) error {
			if owner != "" && string(o) != owner {
				return nil
			}
			return runs.Bucket(o).ForEach(func(k, _ []byte) error {
				run, err := s.readRun(tx, string(o), string(k))
				if err != nil {
					// One damaged record must not hide every run; it
					// stays deletable by id.
					s.logger.Warn("a run record cannot be read; it is left out of listings", "user", string(o), "run_id", string(k), "error", err)
					return nil
				}
				out = append(out, run)
				return nil
			})
		})
	})
	// Ids are ULIDs, so key order is creation order; sort all the same in
	// case a client chose ids.
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// DeleteRun removes one of owner's runs: its record, its events, and its
// name, when the name is the run's.
func (s *Store) DeleteRun(owner, id, name string) error {
	return s.apply(&command{Op: opRunDelete, Owner: owner, ID: id, Name: name}, nil)
}

// applyRunDelete removes run Owner/ID: its record, its events, and its
// name, when Name is the run's.
func applyRunDelete(tx *bolt.Tx, c *command) error {
	owner, id, name := c.Owner, c.ID, c.Name
	runs := tx.Bucket(bucketRuns).Bucket([]byte(owner))
	if runs == nil || runs.Get([]byte(id)) == nil {
		return fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	if err := runs.Delete([]byte(id)); err != nil {
		return err
	}
	if names := tx.Bucket(bucketRunNames).Bucket([]byte(owner)); names != nil && string(names.Get([]byte(name))) == id {
		if err := names.Delete([]byte(name)); err != nil {
			return err
		}
	}
	if p := tx.Bucket(bucketPlacements); p != nil {
		if err := p.Delete([]byte(id)); err != nil {
			return err
		}
	}
	if events := tx.Bucket(bucketRunEvents).Bucket([]byte(owner)); events != nil && events.Bucket([]byte(id)) != nil {
		return events.DeleteBucket([]byte(id))
	}
	return nil
}
