package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/time/rate"
)

// A rotation makes a new active key, which seals new records at once,
// then seals again in the background, in small transactions and at a
// bounded rate, every record that an older key sealed, while the agent
// serves. An older key that seals nothing any more is retired; a retired
// key can be pruned, which removes it from the keyring file. A rotation
// needs no record of its own: the keyring says which keys are neither
// active nor retired, and an agent that starts with such keys, after a
// crash say, goes on with the rotation.

// DefaultResealRate bounds the records a rotation seals again per second.
const DefaultResealRate = 2000

const (
	// resealBatch is the most records sealed again in one transaction.
	resealBatch = 256
	// resealRetry is how often a rotation that found older keys still in
	// use, by the logs of runs that have not ended, looks again.
	resealRetry = time.Minute
	// leaderRetry is how often a server that does not lead its cluster
	// looks again whether it does, while a rotation is under way.
	leaderRetry = 5 * time.Second
)

// SealedFiles is what holds data sealed under the keyring outside the
// database, such as run logs, for rotations to seal again.
type SealedFiles interface {
	// KeysUsed returns how many items each key seals, and how many of
	// those are damaged: no key opens them.
	KeysUsed() (used, damaged map[uint32]int, err error)
	// Reseal seals again under kr's active key what another key sealed,
	// except what is in use, which it leaves for a later pass, and returns
	// how many items it sealed again.
	Reseal(ctx context.Context, kr *Keyring) (int, error)
}

// Rotation configures the store's rotations.
type Rotation struct {
	// Files is what holds sealed data outside the database; nil if none.
	Files SealedFiles
	// Rate bounds the records sealed again per second; 0 means
	// DefaultResealRate.
	Rate int
	// Leader, when set, says whether this server leads its cluster: only
	// the leader seals the replicated records again and retires keys;
	// every server seals its own files again.
	Leader func() bool
	// ServerID names this server in its reports of the keys its files
	// use (filekeys.go).
	ServerID string
}

// rotator is the background work of rotations.
type rotator struct {
	cfg    Rotation
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// failed is how many records the last pass found damaged.
	failed int
}

// StartRotation starts the store's background rotation work, which goes
// on with an unfinished rotation at once. Call it once, when what holds
// sealed files is ready.
func (s *Store) StartRotation(cfg Rotation) {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultResealRate
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rotator{cfg: cfg, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	s.rotator.Store(r)
	go s.rotate(ctx, r)
}

// StopRotation stops the background rotation work and waits for it: before
// the agent leaves its runs, whose loggers go on writing logs that a
// rotation must then not rewrite. A later start goes on with it.
func (s *Store) StopRotation() {
	if r := s.rotator.Load(); r != nil {
		r.cancel()
		<-r.done
	}
}

func (s *Store) rotate(ctx context.Context, r *rotator) {
	defer close(r.done)
	logger := s.logger.Named("keyring")
	for {
		var retry <-chan time.Time
		// Another pass at once while passes seal something: records sealed
		// under the old key just before a rotation may be written after a
		// pass listed what to seal again.
		for s.rotating() {
			if r.cfg.Leader != nil && !r.cfg.Leader() {
				if r.cfg.Files != nil {
					if _, err := r.cfg.Files.Reseal(ctx, s.keyring); err != nil && ctx.Err() == nil {
						logger.Error("could not seal this server's files again", "error", err)
					}
					if err := s.reportFileKeys(r); err != nil && ctx.Err() == nil {
						logger.Warn("could not report the keys of this server's files; the next pass tries again", "error", err)
					}
				}
				// Leadership comes and goes: look again soon.
				retry = time.After(leaderRetry)
				break
			}
			n, err := s.resealPass(ctx, r)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				logger.Error("keyring rotation failed; it is tried again", "error", err, "retry_in", resealRetry)
			}
			if err != nil || n == 0 {
				if s.rotating() {
					retry = time.After(resealRetry)
				}
				break
			}
		}
		select {
		case <-r.kick:
		case <-retry:
		case <-ctx.Done():
			return
		}
	}
}

// rotating reports whether a key is neither active nor retired.
func (s *Store) rotating() bool {
	for _, k := range s.keyring.Keys() {
		if !k.Active && k.RetiredAt.IsZero() {
			return true
		}
	}
	return false
}

// resealPass seals again what older keys sealed, then retires the older
// keys that seal nothing any more. It returns how many records and files
// it sealed again.
func (s *Store) resealPass(ctx context.Context, r *rotator) (int, error) {
	n, err := s.reseal(ctx, r)
	if err != nil {
		return n, err
	}
	return n, s.retire(ctx)
}

// reseal seals again under the active key the records and files that
// older keys sealed, and returns how many.
func (s *Store) reseal(ctx context.Context, r *rotator) (int, error) {
	logger := s.logger.Named("keyring")
	active := s.keyring.ActiveKey()
	var stale []sealedAt
	err := s.db.View(func(tx *bolt.Tx) error {
		return s.eachSealed(tx, func(at sealedAt, key uint32) error {
			if key != active {
				// What bbolt gives lives only as long as the transaction.
				path := make([][]byte, len(at.path))
				for i, name := range at.path {
					path[i] = bytes.Clone(name)
				}
				stale = append(stale, sealedAt{path: path, key: bytes.Clone(at.key)})
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("list records: %w", err)
	}
	limit := rate.NewLimiter(rate.Limit(r.cfg.Rate), min(resealBatch, r.cfg.Rate))
	total, failed := 0, 0
	for batch := range slices.Chunk(stale, limit.Burst()) {
		if err := limit.WaitN(ctx, len(batch)); err != nil {
			return total, err
		}
		n, f, err := s.resealRecords(batch)
		if err != nil {
			return total, err
		}
		total, failed = total+n, failed+f
	}
	if total > 0 {
		logger.Info("sealed records again under the active key", "key", active, "records", total)
	}
	if failed > 0 && failed != r.failed {
		logger.Warn("some records sealed under an older key do not open: they are damaged, and stay as they are", "records", failed)
	}
	r.failed = failed
	if r.cfg.Files != nil {
		n, err := r.cfg.Files.Reseal(ctx, s.keyring)
		total += n
		if err != nil {
			return total, err
		}
		if err := s.reportFileKeys(r); err != nil {
			return total, err
		}
	}
	return total, nil
}

// sealing holds off changes of the keyring's keys while a write seals
// records and commits them; call the function it returns once committed.
func (s *Store) sealing() func() {
	s.keysMu.RLock()
	return s.keysMu.RUnlock
}

// retire marks retired the older keys that seal nothing any more, but
// damaged records and files, which no key opens.
func (s *Store) retire(context.Context) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	status, err := s.keyringStatus(true)
	if err != nil {
		return err
	}
	var done []uint32
	for _, k := range status {
		if k.State == KeyRotating && k.Records == k.Unreadable {
			done = append(done, k.ID)
		}
	}
	if len(done) == 0 {
		return nil
	}
	now := time.Now().UTC()
	err = s.keyring.change(func(kf *keyringFile) error {
		for i := range kf.Keys {
			if slices.Contains(done, kf.Keys[i].ID) && kf.Keys[i].ID != kf.Active {
				kf.Keys[i].RetiredAt = now
			}
		}
		return nil
	}, s.saveKeyring)
	if err != nil {
		return err
	}
	logger := s.logger.Named("keyring")
	for _, k := range status {
		if slices.Contains(done, k.ID) {
			if k.Unreadable > 0 {
				logger.Warn("retiring a key that seals only damaged records or logs, which no key opens: they stay unreadable",
					"key", k.ID, "damaged", k.Unreadable)
			}
			logger.Info("retired a key that seals nothing any more; `hush operator keyring prune` removes it", "key", k.ID)
		}
	}
	return nil
}

// Key states, as KeyringStatus reports them.
const (
	KeyActive   = "active"
	KeyRotating = "rotating"
	KeyRetired  = "retired"
)

// KeyStatus describes one key of the keyring and what it seals.
type KeyStatus struct {
	ID        uint32
	State     string
	CreatedAt time.Time
	RetiredAt time.Time
	// Records counts the records and files sealed under the key.
	Records int
	// Unreadable counts those of Records that are damaged: no key opens
	// them, so no rotation can seal them again. As of the rotation's
	// last look.
	Unreadable int
}

// KeyringStatus describes the keyring's keys, oldest first, with how much
// each seals. It only counts: which records are damaged is as the
// rotation last found.
func (s *Store) KeyringStatus() ([]KeyStatus, error) { return s.keyringStatus(false) }

// keyringStatus is KeyringStatus; with verify, it opens each record and
// file sealed under an older key to count the damaged ones, and keeps the
// counts for KeyringStatus.
func (s *Store) keyringStatus(verify bool) ([]KeyStatus, error) {
	keys := s.keyring.Keys()
	active := s.keyring.ActiveKey()
	counts := map[uint32]int{}
	damaged := map[uint32]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := fileKeys(tx, counts, damaged); err != nil {
			return err
		}
		return s.eachSealed(tx, func(at sealedAt, key uint32) error {
			counts[key]++
			if !verify || key == active {
				return nil
			}
			v := bucketAt(tx, at.path).Get(at.key)
			prefix, aad, _ := s.sealedRecord(tx, at.path, at.key, v)
			if _, err := s.keyring.Open(v[prefix:], aad); err != nil {
				damaged[key]++
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("count sealed records: %w", err)
	}
	s.damagedMu.Lock()
	if verify {
		s.damaged = damaged
	} else {
		damaged = s.damaged
	}
	s.damagedMu.Unlock()
	out := make([]KeyStatus, len(keys))
	for i, k := range keys {
		st := KeyStatus{ID: k.ID, CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt, Records: counts[k.ID]}
		switch {
		case k.Active:
			st.State = KeyActive
		case !k.RetiredAt.IsZero():
			st.State = KeyRetired
		default:
			st.State = KeyRotating
		}
		if !k.Active {
			st.Unreadable = min(damaged[k.ID], st.Records)
		}
		out[i] = st
	}
	return out, nil
}

// RotateKeyring makes a new active key, which seals new records from now
// on, and starts sealing again under it what older keys sealed. It returns
// the new key's id.
func (s *Store) RotateKeyring() (uint32, error) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	var id uint32
	err := s.keyring.change(func(kf *keyringFile) error {
		key, err := NewDataKey()
		if err != nil {
			return err
		}
		for _, k := range kf.Keys {
			id = max(id, k.ID)
		}
		id++
		kf.Keys = append(kf.Keys, keyringKey{ID: id, Key: key, CreatedAt: time.Now().UTC()})
		kf.Active = id
		return nil
	}, s.saveKeyring)
	if err != nil {
		return 0, fmt.Errorf("rotate keyring: %w", err)
	}
	s.logger.Named("keyring").Info("rotated the keyring: a new key seals new records, and older records are sealed again under it in the background", "key", id)
	s.kickRotation()
	return id, nil
}

func (s *Store) kickRotation() {
	if r := s.rotator.Load(); r != nil {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// ErrNothingToPrune is returned by PruneKeyring when no key is retired.
var ErrNothingToPrune = errors.New("no retired keys to prune")

// PruneKeyring removes the retired keys from the keyring and returns their
// ids. A retired key found sealing something again, as after a restored
// backup, is not removed but goes back to rotating.
func (s *Store) PruneKeyring() ([]uint32, error) {
	if r := s.rotator.Load(); r == nil {
		return nil, errors.New("prune keyring: the store's rotation has not started, so its sealed files are not known")
	}
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	status, err := s.keyringStatus(true)
	if err != nil {
		return nil, err
	}
	var prune, busy, again []uint32
	var busyDesc []string
	for _, k := range status {
		switch {
		case k.State == KeyActive:
		case k.Records > k.Unreadable:
			busy = append(busy, k.ID)
			busyDesc = append(busyDesc, fmt.Sprintf("%d (%d records)", k.ID, k.Records-k.Unreadable))
			if k.State == KeyRetired {
				again = append(again, k.ID)
			}
		case k.State == KeyRetired:
			prune = append(prune, k.ID)
		}
	}
	if len(again) > 0 {
		err := s.keyring.change(func(kf *keyringFile) error {
			for i := range kf.Keys {
				if slices.Contains(again, kf.Keys[i].ID) {
					kf.Keys[i].RetiredAt = time.Time{}
				}
			}
			return nil
		}, s.saveKeyring)
		if err != nil {
			return nil, fmt.Errorf("prune keyring: %w", err)
		}
		s.logger.Named("keyring").Warn("retired keys seal records again; they are rotated again", "keys", fmt.Sprint(again))
		s.kickRotation()
	}
	if len(prune) == 0 {
		if len(busy) > 0 {
			return nil, fmt.Errorf("%w: key(s) %s still seal data, which the rotation seals again under the active key in the background; "+
				"`hush operator keyring list` shows how far it is", ErrNothingToPrune, strings.Join(busyDesc, ", "))
		}
		return nil, fmt.Errorf("%w: the keyring holds only its active key", ErrNothingToPrune)
	}
	err = s.keyring.change(func(kf *keyringFile) error {
		kf.Keys = slices.DeleteFunc(kf.Keys, func(k keyringKey) bool { return slices.Contains(prune, k.ID) })
		return nil
	}, s.saveKeyring)
	if err != nil {
		return nil, fmt.Errorf("prune keyring: %w", err)
	}
	s.logger.Named("keyring").Info("pruned retired keys from the keyring", "keys", fmt.Sprint(prune))
	return prune, nil
}
