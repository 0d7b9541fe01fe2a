package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// Secret is a stored secret: its metadata and either its data or a provider
// reference. On disk its metadata and its values are sealed apart.
type Secret struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Type      api.SecretType    `json:"type"`
	Owner     string            `json:"owner"`
	CreatedAt time.Time         `json:"created_at"`
	Fields    map[string]string `json:"fields,omitempty"`
	Data      map[string][]byte `json:"data,omitempty"`
	From      string            `json:"from,omitempty"`
}

// Meta returns the secret without its values.
func (s *Secret) Meta() *SecretMeta {
	return &SecretMeta{
		ID: s.ID, Name: s.Name, Owner: s.Owner, Type: s.Type, CreatedAt: s.CreatedAt,
		Fields: s.Fields, From: s.From,
	}
}

// Tombstone records a deleted secret: its id is never created again on
// this agent, so a stale copy from another cluster cannot undo the delete.
type Tombstone struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	DeletedAt time.Time `json:"deleted_at"`
}

// SecretMeta is what the store keeps about a secret apart from its values.
// Reading it never opens a value.
type SecretMeta struct {
	ID        string
	Name      string
	Owner     string
	Type      api.SecretType
	CreatedAt time.Time
	Fields    map[string]string
	From      string
	// Digest is the store's digest of the secret's content, computed when
	// it was created.
	Digest string
}

// Digest returns the agent's keyed digest of what the secret holds: its
// type, fields, data and provider reference, not its name or identity. Two
// secrets with the same content have the same digest on one agent, so a
// client can tell whether a declared secret differs from a stored one
// without either value leaving the agent.
func (s *Store) Digest(sec *Secret) string {
	content, _ := json.Marshal(struct {
		Type   api.SecretType    `json:"type"`
		Fields map[string]string `json:"fields"`
		Data   map[string][]byte `json:"data"`
		From   string            `json:"from"`
	}{sec.Type, nonNil(sec.Fields), nonNil(sec.Data), sec.From})
	return s.keyring.Digest(content)
}

// nonNil makes an empty map and a missing one digest the same.
func nonNil[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

func secretAAD(owner, name string) []byte {
	return []byte(string(bucketSecrets) + "/" + owner + "/" + name)
}

// UniqueTypeError is returned when an owner would hold a second secret of a
// type allowed once per owner. It matches ErrExists.
type UniqueTypeError struct {
	Type     api.SecretType
	Existing string
}

func (e *UniqueTypeError) Error() string {
	return fmt.Sprintf("already holds %s secret %s", e.Type, e.Existing)
}

// Is makes errors.Is(err, ErrExists) hold.
func (e *UniqueTypeError) Is(target error) bool { return target == ErrExists }

// MissingError is returned by OpenSecrets when secrets it was asked for do
// not exist. It matches ErrNotFound.
type MissingError struct {
	Names []string
}

func (e *MissingError) Error() string {
	return "secret(s) " + strings.Join(e.Names, ", ") + ": not found"
}

// Is makes errors.Is(err, ErrNotFound) hold.
func (e *MissingError) Is(target error) bool { return target == ErrNotFound }

// CreateSecret stores a new secret and returns its metadata, digest
// included. It fails with ErrExists when the owner holds a secret of that
// name, or one of a type the owner may hold only once.
func (s *Store) CreateSecret(sec *Secret) (*SecretMeta, error) {
	if _, ok := api.LookupType(sec.Type); !ok {
		return nil, fmt.Errorf("unknown secret type %q", sec.Type)
	}
	// Sealing a 1 MiB value takes a while: it is done before the write.
	m := sec.Meta()
	m.Digest = s.Digest(sec)
	err := s.write(func() (*command, error) {
		meta, value, err := s.encodeSecret(sec, m.Digest)
		return &command{Op: opSecretCreate, Owner: sec.Owner, Name: sec.Name, ID: sec.ID, Type: sec.Type, Record: meta, Value: value}, err
	}, nil)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// applySecretCreate stores secret Owner/Name, of id ID and type Type, from
// its sealed metadata Record and value Value.
func (s *Store) applySecretCreate(tx *bolt.Tx, c *command) error {
	b, err := tx.Bucket(bucketSecrets).CreateBucketIfNotExists([]byte(c.Owner))
	if err != nil {
		return err
	}
	if b.Get([]byte(c.Name)) != nil {
		return fmt.Errorf("secret %s: %w", c.Name, ErrExists)
	}
	if graves := tx.Bucket(bucketTombstones).Bucket([]byte(c.Owner)); graves != nil && graves.Get([]byte(c.ID)) != nil {
		return fmt.Errorf("secret %s with id %s: %w", c.Name, c.ID, ErrDeleted)
	}
	if spec, ok := api.LookupType(c.Type); ok && spec.UniquePerOwner {
		err := b.ForEach(func(k, v []byte) error {
			if h := s.recordHeader(c.Owner, string(k), v); h != nil && h.Type == c.Type {
				return &UniqueTypeError{Type: c.Type, Existing: string(k)}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return s.putSecret(tx, c.Owner, c.Name, c.Record, c.Value)
}

func (s *Store) putSecret(tx *bolt.Tx, owner, name string, meta, value []byte) error {
	b, err := tx.Bucket(bucketSecrets).CreateBucketIfNotExists([]byte(owner))
	if err != nil {
		return err
	}
	vb, err := tx.Bucket(bucketValues).CreateBucketIfNotExists([]byte(owner))
	if err != nil {
		return err
	}
	if err := b.Put([]byte(name), meta); err != nil {
		return err
	}
	return vb.Put([]byte(name), value)
}

// GetSecret reads one of owner's secrets, values included. A secret that
// cannot be read is a *RecordError.
func (s *Store) GetSecret(owner, name string) (*Secret, error) {
	var sec *Secret
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, value := s.records(tx, owner, name)
		if rec == nil {
			return fmt.Errorf("secret %s: %w", name, ErrNotFound)
		}
		var rerr *RecordError
		if sec, rerr = s.decodeSecret(owner, name, rec, value); rerr != nil {
			return rerr
		}
		return nil
	})
	return sec, err
}

// GetSecretMeta reads one of owner's secrets without its values. A secret
// that cannot be read is a *RecordError.
func (s *Store) GetSecretMeta(owner, name string) (*SecretMeta, error) {
	var m *SecretMeta
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, _ := s.records(tx, owner, name)
		if rec == nil {
			return fmt.Errorf("secret %s: %w", name, ErrNotFound)
		}
		var rerr *RecordError
		if m, rerr = s.decodeMeta(owner, name, rec); rerr != nil {
			return rerr
		}
		return nil
	})
	return m, err
}

// records returns the metadata and value records of a secret; either is
// nil when missing. They are valid only in tx.
func (s *Store) records(tx *bolt.Tx, owner, name string) (meta, value []byte) {
	if b := tx.Bucket(bucketSecrets).Bucket([]byte(owner)); b != nil {
		meta = b.Get([]byte(name))
	}
	if vb := tx.Bucket(bucketValues).Bucket([]byte(owner)); vb != nil {
		value = vb.Get([]byte(name))
	}
	return meta, value
}

// walkBatch is how many records WalkSecrets copies out of one read
// transaction. It bounds the memory a listing holds, and keeps a slow
// reader from holding a transaction open while it writes to the network.
const walkBatch = 256

// WalkSecrets calls fn with the metadata of each of owner's secrets, by
// name, never opening values; of one type when typ is not empty. A secret
// that cannot be read is passed as a *RecordError instead, whatever its
// type. It stops at the first error fn returns. Records are read in small
// batches, so a listing of any size holds little memory; a secret created
// or deleted during the walk may or may not be seen.
func (s *Store) WalkSecrets(owner string, typ api.SecretType, fn func(*SecretMeta, *RecordError) error) error {
	type raw struct{ k, v []byte }
	var after []byte
	for {
		var batch []raw
		err := s.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketSecrets).Bucket([]byte(owner))
			if b == nil {
				return nil
			}
			c := b.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(batch) < walkBatch; k, v = c.Next() {
				batch = append(batch, raw{bytes.Clone(k), bytes.Clone(v)})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range batch {
			m, rerr := s.decodeMeta(owner, string(r.k), r.v)
			switch {
			case typ == "":
			case m != nil && m.Type != typ, rerr != nil && rerr.Type != "" && rerr.Type != typ:
				continue
			}
			if err := fn(m, rerr); err != nil {
				return err
			}
		}
		if len(batch) < walkBatch {
			return nil
		}
		after = batch[len(batch)-1].k
	}
}

// ListSecrets returns the metadata of all of owner's secrets by name, and
// the secrets that cannot be read. It never opens values.
func (s *Store) ListSecrets(owner string) ([]*SecretMeta, []*RecordError, error) {
	var out []*SecretMeta
	var bad []*RecordError
	err := s.WalkSecrets(owner, "", func(m *SecretMeta, rerr *RecordError) error {
		if rerr != nil {
			bad = append(bad, rerr)
		} else {
			out = append(out, m)
		}
		return nil
	})
	return out, bad, err
}

// OpenSecrets reads owner's secrets named in names, in that order, values
// included, or all of them by name when names is nil. The secrets that cannot be read
// are returned apart, so that a caller can go on without them. A name that
// does not exist makes it fail with a *MissingError.
func (s *Store) OpenSecrets(owner string, names []string) ([]*Secret, []*RecordError, error) {
	var out []*Secret
	var bad []*RecordError
	add := func(name string, rec, value []byte) {
		if sec, rerr := s.decodeSecret(owner, name, rec, value); rerr != nil {
			bad = append(bad, rerr)
		} else {
			out = append(out, sec)
		}
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		if names == nil {
			b := tx.Bucket(bucketSecrets).Bucket([]byte(owner))
			if b == nil {
				return nil
			}
			vb := tx.Bucket(bucketValues).Bucket([]byte(owner))
			return b.ForEach(func(k, v []byte) error {
				var value []byte
				if vb != nil {
					value = vb.Get(k)
				}
				add(string(k), v, value)
				return nil
			})
		}
		var missing []string
		for _, n := range names {
			rec, value := s.records(tx, owner, n)
			if rec == nil {
				missing = append(missing, n)
				continue
			}
			add(n, rec, value)
		}
		if len(missing) > 0 {
			return &MissingError{Names: missing}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}

// DeleteSecret removes one of owner's secrets and leaves a tombstone for
// its id, so that copying a stale replica from another cluster never
// brings it back. When id is not empty, it deletes only a secret holding that id
// and fails with ErrConflict otherwise, so that repairing one replica never
// deletes a different secret of the same name. A secret that cannot be
// read is deleted too, with a tombstone when its id can be read.
func (s *Store) DeleteSecret(owner, name, id string) (*Tombstone, error) {
	var grave *Tombstone
	err := s.apply(&command{Op: opSecretDelete, Owner: owner, Name: name, ID: id, Time: time.Now().UTC()}, &grave)
	return grave, err
}

// applySecretDelete deletes secret Owner/Name, holding id ID unless ID is
// empty, and leaves a tombstone dated Time.
func (s *Store) applySecretDelete(tx *bolt.Tx, c *command) (*Tombstone, error) {
	owner, name, id := c.Owner, c.Name, c.ID
	rec, _ := s.records(tx, owner, name)
	if rec == nil {
		return nil, fmt.Errorf("secret %s: %w", name, ErrNotFound)
	}
	h := s.recordHeader(owner, name, rec)
	switch {
	case id != "" && h == nil:
		return nil, fmt.Errorf("secret %s cannot be read, so its id cannot be compared with %s; delete it without an id: %w", name, id, ErrConflict)
	case id != "" && h.ID != id:
		return nil, fmt.Errorf("secret %s holds id %s, not %s: %w", name, h.ID, id, ErrConflict)
	}
	grave := &Tombstone{Name: name, DeletedAt: c.Time}
	if h != nil && h.ID != "" {
		grave.ID = h.ID
		graves, err := tx.Bucket(bucketTombstones).CreateBucketIfNotExists([]byte(owner))
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(grave)
		if err != nil {
			return nil, err
		}
		if err := graves.Put([]byte(h.ID), v); err != nil {
			return nil, err
		}
	}
	if vb := tx.Bucket(bucketValues).Bucket([]byte(owner)); vb != nil {
		if err := vb.Delete([]byte(name)); err != nil {
			return nil, err
		}
	}
	return grave, tx.Bucket(bucketSecrets).Bucket([]byte(owner)).Delete([]byte(name))
}

// ListTombstones returns owner's tombstones, oldest first.
func (s *Store) ListTombstones(owner string) ([]*Tombstone, error) {
	var out []*Tombstone
	err := s.db.View(func(tx *bolt.Tx) error {
		graves := tx.Bucket(bucketTombstones).Bucket([]byte(owner))
		if graves == nil {
			return nil
		}
		return graves.ForEach(func(_, v []byte) error {
			var t Tombstone
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode tombstone: %w", err)
			}
			out = append(out, &t)
			return nil
		})
	})
	// ULIDs sort by creation; deletion order is what a reader wants.
	sort.Slice(out, func(i, j int) bool { return out[i].DeletedAt.Before(out[j].DeletedAt) })
	return out, err
}
