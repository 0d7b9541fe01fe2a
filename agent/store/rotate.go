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
	// settle is how long after a rotation its key must have been active
	// before older keys can retire: a record sealed under the old key just
	// before the rotation, but written later, is written by then.
	settle = time.Second
	// resealRetry is how often a rotation that found older keys still in
	// use, by the logs of runs that have not ended, looks again.
	resealRetry = time.Minute
)

// SealedFiles is what holds data sealed under the keyring outside the
// database, such as run logs, for rotations to seal again.
type SealedFiles interface {
	// KeysUsed returns how many items each key seals.
	KeysUsed() (map[uint32]int, error)
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
}

// rotator is the background work of rotations.
type rotator struct {
	cfg    Rotation
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
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

// stopRotation stops the background rotation work and waits for it.
func (s *Store) stopRotation() {
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
	if len(stale) > 0 {
		logger.Info("sealed records again under the active key", "key", active, "records", total, "unreadable", failed)
	}
	if r.cfg.Files != nil {
		n, err := r.cfg.Files.Reseal(ctx, s.keyring)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, s.retire(ctx)
}

// retire marks retired the older keys that seal nothing any more.
func (s *Store) retire(ctx context.Context) error {
	if wait := settle - time.Since(s.activeSince()); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	status, err := s.KeyringStatus()
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
	for _, k := range status {
		if slices.Contains(done, k.ID) {
			if k.Unreadable > 0 {
				s.logger.Named("keyring").Warn("retired a key that seals only records no key opens: they stay unreadable",
					"key", k.ID, "records", k.Unreadable)
			}
			s.logger.Named("keyring").Info("retired a key that seals nothing any more; `hush operator keyring prune` removes it", "key", k.ID)
		}
	}
	return nil
}

// activeSince returns when the active key was made.
func (s *Store) activeSince() time.Time {
	for _, k := range s.keyring.Keys() {
		if k.Active {
			return k.CreatedAt
		}
	}
	return time.Time{}
}

func (s *Store) saveKeyring(kf *keyringFile) error { return writeKeyringFile(s.KeyringPath(), kf) }

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
	// Unreadable counts those of Records that the key does not open, for
	// an older key: damaged records, which no rotation can help.
	Unreadable int
}

// KeyringStatus describes the keyring's keys, oldest first, with how much
// each seals.
func (s *Store) KeyringStatus() ([]KeyStatus, error) {
	keys := s.keyring.Keys()
	counts := map[uint32]int{}
	unreadable := map[uint32]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return s.eachSealed(tx, func(at sealedAt, key uint32) error {
			counts[key]++
			if key == s.keyring.ActiveKey() {
				return nil
			}
			v := bucketAt(tx, at.path).Get(at.key)
			prefix, aad, _ := s.sealedRecord(tx, at.path, at.key, v)
			if _, err := s.keyring.Open(v[prefix:], aad); err != nil {
				unreadable[key]++
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("count sealed records: %w", err)
	}
	if r := s.rotator.Load(); r != nil && r.cfg.Files != nil {
		files, err := r.cfg.Files.KeysUsed()
		if err != nil {
			return nil, err
		}
		for k, n := range files {
			counts[k] += n
		}
	}
	out := make([]KeyStatus, len(keys))
	for i, k := range keys {
		st := KeyStatus{ID: k.ID, CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt, Records: counts[k.ID], Unreadable: unreadable[k.ID]}
		switch {
		case k.Active:
			st.State = KeyActive
		case !k.RetiredAt.IsZero():
			st.State = KeyRetired
		default:
			st.State = KeyRotating
		}
		out[i] = st
	}
	return out, nil
}

// RotateKeyring makes a new active key, which seals new records from now
// on, and starts sealing again under it what older keys sealed. It returns
// the new key's id.
func (s *Store) RotateKeyring() (uint32, error) {
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
	if r := s.rotator.Load(); r != nil {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	return id, nil
}

// ErrNothingToPrune is returned by PruneKeyring when no key is retired.
var ErrNothingToPrune = errors.New("no retired keys to prune")

// PruneKeyring removes the retired keys from the keyring and returns their
// ids. A key that seals something again (which only a restored backup
// could do) is not removed.
func (s *Store) PruneKeyring() ([]uint32, error) {
	status, err := s.KeyringStatus()
	if err != nil {
		return nil, err
	}
	var prune, busy []string
	var ids []uint32
	for _, k := range status {
		switch {
		case k.State == KeyRetired && k.Records == k.Unreadable:
			ids = append(ids, k.ID)
			prune = append(prune, fmt.Sprint(k.ID))
		case k.State != KeyActive:
			busy = append(busy, fmt.Sprintf("%d (%d records)", k.ID, k.Records))
		}
	}
	if len(ids) == 0 {
		if len(busy) > 0 {
			return nil, fmt.Errorf("%w: key %s still seal records; the rotation seals them again in the background, see `hush operator keyring list`",
				ErrNothingToPrune, strings.Join(busy, ", "))
		}
		return nil, fmt.Errorf("%w: the keyring holds only its active key", ErrNothingToPrune)
	}
	err = s.keyring.change(func(kf *keyringFile) error {
		kf.Keys = slices.DeleteFunc(kf.Keys, func(k keyringKey) bool { return slices.Contains(ids, k.ID) })
		return nil
	}, s.saveKeyring)
	if err != nil {
		return nil, fmt.Errorf("prune keyring: %w", err)
	}
	s.logger.Named("keyring").Info("pruned retired keys from the keyring", "keys", strings.Join(prune, ","))
	return ids, nil
}
