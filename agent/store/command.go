package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// Every write of the store is a command: what a write does is decided,
// sealed and timed before it is one, so that applying it to a database is
// a function of the command and the database alone. An agent that is a
// cluster of its own applies commands to its database as they come; in a
// cluster of servers, a Replicator puts them in the Raft log, and every
// server applies them in the log's order (fsm.go). Values are sealed
// before they are in a command: the log holds no value in clear.

// Command operations.
const (
	opSecretCreate   = "secret.create"
	opSecretDelete   = "secret.delete"
	opTokenCreate    = "token.create"
	opTokenRevoke    = "token.revoke"
	opTokenRevokeRun = "token.revoke-run"
	opTokenTouch     = "token.touch"
	opRunCreate      = "run.create"
	opRunSave        = "run.save"
	opRunDelete      = "run.delete"
	opRunCA          = "run-ca.put"
	opReseal         = "reseal"
	opKeyringPut     = "keyring.put"
	opFileKeys       = "file-keys.put"
)

// command is one write. Which fields an operation uses is said at its
// apply function.
type command struct {
	Op    string         `json:"op"`
	Owner string         `json:"owner,omitempty"`
	Name  string         `json:"name,omitempty"`
	ID    string         `json:"id,omitempty"`
	Type  api.SecretType `json:"type,omitempty"`
	User  string         `json:"user,omitempty"`
	// Key is a binary key, such as a token's hash.
	Key []byte `json:"key,omitempty"`
	// Record and Value are sealed records, or a token's record.
	Record []byte `json:"record,omitempty"`
	Value  []byte `json:"value,omitempty"`
	// Events are a run's sealed events from sequence number First on.
	Events [][]byte `json:"events,omitempty"`
	First  uint64   `json:"first,omitempty"`
	// Time is when the write happened, for what it records.
	Time time.Time `json:"time,omitzero"`
	// Uses are tokens' last uses.
	Uses []tokenUse `json:"uses,omitempty"`
	// Reseal are records sealed again under the active key.
	Reseal []resealChange `json:"reseal,omitempty"`
	// Guard, Move and Done are a run write's expectations of the run's
	// placement, where it moves the run, and whether the run is done
	// (placement.go).
	Guard *Guard `json:"guard,omitempty"`
	Move  *Move  `json:"move,omitempty"`
	Done  bool   `json:"done,omitempty"`
	// Placement is a new run's entry in the placements index.
	Placement *Placement `json:"placement,omitempty"`
	// SealedWith is the key that sealed what the command writes; a
	// command sealed under a key the keyring has since retired, or never
	// held, is refused with errStaleKey, and sealed again.
	SealedWith uint32 `json:"sealed_with,omitempty"`

	// index is where the log put the command, once applied through it.
	index uint64
	// keyring is the keyring a keyring.put carries, as its apply opened
	// it, for the server to install once the command is committed.
	keyring *keyringFile
}

// tokenUse is when the token of hash Key was last used.
type tokenUse struct {
	Key []byte    `json:"key"`
	At  time.Time `json:"at"`
}

// resealChange replaces the record at Path/Key with New, when it still
// holds Old.
type resealChange struct {
	Path [][]byte `json:"path"`
	Key  []byte   `json:"key"`
	Old  []byte   `json:"old"`
	New  []byte   `json:"new"`
}

// Replicator puts commands in a replicated log and answers once they are
// committed and applied: a cluster of servers' Raft node.
type Replicator interface {
	// Apply replicates cmd and returns what the store's ApplyBatch gave
	// for it. Its error is a failure to replicate, not of the command.
	Apply(ctx context.Context, cmd []byte) ([]byte, error)
}

// SetReplicator makes the store's writes go through r from now on. Call
// it before the store serves.
func (s *Store) SetReplicator(r Replicator) { s.replicator = r }

// replicateTimeout bounds a write that waits for a cluster's quorum.
const replicateTimeout = 10 * time.Second

// apply runs c, locally or through the cluster, and stores what it
// returns in out (a pointer), when out is not nil.
func (s *Store) apply(c *command, out any) error {
	if s.replicator == nil {
		var v any
		err := s.commits.write(func(tx *bolt.Tx) error {
			var err error
			v, err = s.applyTx(tx, c)
			return err
		})
		if err == nil && c.Op == opKeyringPut {
			s.installClusterKeyring(c.keyring)
		}
		if err == nil {
			s.changed.fire()
		}
		if err == nil && out != nil && v != nil {
			reflect.ValueOf(out).Elem().Set(reflect.ValueOf(v))
		}
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode %s: %w", c.Op, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), replicateTimeout)
	defer cancel()
	res, err := s.replicator.Apply(ctx, b)
	if err != nil {
		return err
	}
	// The leader applied it. This server may not have yet: it hears of the
	// commit with the leader's next message, which can be a heartbeat away.
	// Its consistent reads wait for it; its writes need not.
	idx, err := decodeResult(res, out)
	c.index = idx
	return err
}

// errStaleKey refuses a write sealed under a key that the keyring has
// retired, or does not hold: another server rotated the keyring while the
// write was sealed.
var errStaleKey = errors.New("sealed under a key that the keyring has retired")

// write seals a command with build and applies it, holding off changes of
// keys meanwhile; when the cluster's keyring retired the key before the
// command reached it, it seals the command again.
func (s *Store) write(build func() (*command, error), out any) error {
	_, err := s.writeAt(build, out)
	return err
}

// writeAt is write that also returns where the log put the command, or 0
// without a log.
func (s *Store) writeAt(build func() (*command, error), out any) (uint64, error) {
	for attempt := 1; ; attempt++ {
		unlock := s.sealing()
		active := s.keyring.ActiveKey()
		c, err := build()
		if err == nil {
			c.SealedWith = active
			err = s.apply(c, out)
		}
		unlock()
		var idx uint64
		if c != nil {
			idx = c.index
		}
		if !errors.Is(err, errStaleKey) || attempt == 3 {
			return idx, err
		}
		// This server learns of the new key from the log, behind the
		// server that refused the command: it has it once it has applied
		// the log as far as that command.
		ctx, cancel := context.WithTimeout(context.Background(), replicateTimeout)
		werr := s.waitApplied(ctx, idx)
		cancel()
		if werr != nil {
			return idx, err
		}
	}
}

// applyTx applies c in tx and returns what the operation returns.
func (s *Store) applyTx(tx *bolt.Tx, c *command) (any, error) {
	if c.SealedWith != 0 && !s.keyring.sealsWith(c.SealedWith) {
		return nil, fmt.Errorf("%s: key %d: %w", c.Op, c.SealedWith, errStaleKey)
	}
	switch c.Op {
	case opSecretCreate:
		return nil, s.applySecretCreate(tx, c)
	case opSecretDelete:
		return s.applySecretDelete(tx, c)
	case opTokenCreate:
		return nil, applyTokenCreate(tx, c)
	case opTokenRevoke:
		return applyTokenRevoke(tx, c)
	case opTokenRevokeRun:
		return nil, applyTokenRevokeRun(tx, c)
	case opTokenTouch:
		return nil, applyTokenTouch(tx, c)
	case opRunCreate:
		return nil, applyRunCreate(tx, c)
	case opRunSave:
		return nil, applyRunSave(tx, c)
	case opRunDelete:
		return nil, applyRunDelete(tx, c)
	case opRunCA:
		return nil, applyRunCA(tx, c)
	case opReseal:
		return applyReseal(tx, c)
	case opKeyringPut:
		return nil, s.applyKeyring(tx, c)
	case opFileKeys:
		return nil, applyFileKeys(tx, c)
	case opRunStop:
		return nil, applyRunStop(tx, c)
	case opNodeRegister:
		return nil, applyNodeRegister(tx, c)
	case opNodeHeartbeat:
		return nil, applyNodeHeartbeat(tx, c)
	case opNodeDown:
		return nil, applyNodeDown(tx, c)
	case opNodeDrain:
		return applyNodeDrain(tx, c)
	}
	return nil, fmt.Errorf("%w: command %q (written by a newer hush?)", ErrUnknownFormat, c.Op)
}

// result is a command's outcome as the log's appliers return it.
type result struct {
	Err   *resultError    `json:"err,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
	// Index is the command's place in the log: the server that sent it
	// reads its own write once it has applied that far.
	Index uint64 `json:"index,omitempty"`
}

// resultError carries an error across servers, with the sentinel it
// matches.
type resultError struct {
	Kind     string         `json:"kind,omitempty"`
	Message  string         `json:"message"`
	Type     api.SecretType `json:"type,omitempty"`
	Existing string         `json:"existing,omitempty"`
}

// sentinels are the errors that results carry by name.
var sentinels = map[string]error{
	"exists": ErrExists, "not_found": ErrNotFound, "corrupt": ErrCorrupt, "deleted": ErrDeleted,
	"conflict": ErrConflict, "last_management": ErrLastManagement, "unknown_format": ErrUnknownFormat,
	"stale_key": errStaleKey, "invalid": ErrInvalid,
}

func encodeResult(index uint64, v any, err error) []byte {
	r := result{Index: index}
	if err != nil {
		re := &resultError{Message: err.Error()}
		var unique *UniqueTypeError
		if errors.As(err, &unique) {
			re.Kind, re.Type, re.Existing = "unique_type", unique.Type, unique.Existing
		}
		for kind, sentinel := range sentinels {
			if re.Kind == "" && errors.Is(err, sentinel) {
				re.Kind = kind
			}
		}
		r.Err = re
	} else if v != nil {
		r.Value, _ = json.Marshal(v)
	}
	b, _ := json.Marshal(&r)
	return b
}

// decodeResult reads what encodeResult wrote into out, and returns the
// command's index and error.
func decodeResult(b []byte, out any) (uint64, error) {
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("decode a write's result: %w", err)
	}
	if r.Err != nil {
		if r.Err.Kind == "unique_type" {
			return r.Index, &UniqueTypeError{Type: r.Err.Type, Existing: r.Err.Existing}
		}
		return r.Index, &appliedError{msg: r.Err.Message, sentinel: sentinels[r.Err.Kind]}
	}
	if out != nil && len(r.Value) > 0 {
		return r.Index, json.Unmarshal(r.Value, out)
	}
	return r.Index, nil
}

// appliedError is an error a command returned on the server that applied
// it: its message, and the sentinel it matched there.
type appliedError struct {
	msg      string
	sentinel error
}

func (e *appliedError) Error() string { return e.msg }
func (e *appliedError) Unwrap() error { return e.sentinel }
