package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// Secret is a stored secret: its metadata and either its data or a provider
// reference. The whole record is sealed on disk.
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

// Metadata returns the secret without its values.
func (s *Secret) Metadata() *api.Secret {
	src := api.SourceStored
	if s.From != "" {
		src = s.From
	}
	return &api.Secret{
		ID: s.ID, Name: s.Name, Type: s.Type, Owner: s.Owner,
		CreatedAt: s.CreatedAt, Fields: s.Fields, Source: src,
	}
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

// CreateSecret stores a new secret. It fails with ErrExists when the owner
// holds a secret of that name, or one of a type the owner may hold only once.
func (s *Store) CreateSecret(sec *Secret) error {
	spec, ok := api.LookupType(sec.Type)
	if !ok {
		return fmt.Errorf("unknown secret type %q", sec.Type)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketSecrets).CreateBucketIfNotExists([]byte(sec.Owner))
		if err != nil {
			return err
		}
		if b.Get([]byte(sec.Name)) != nil {
			return fmt.Errorf("secret %s: %w", sec.Name, ErrExists)
		}
		if graves := tx.Bucket(bucketTombstones).Bucket([]byte(sec.Owner)); graves != nil && graves.Get([]byte(sec.ID)) != nil {
			return fmt.Errorf("secret %s with id %s: %w", sec.Name, sec.ID, ErrDeleted)
		}
		if spec.UniquePerOwner {
			existing, err := s.secretsIn(b, sec.Owner)
			if err != nil {
				return err
			}
			for _, e := range existing {
				if e.Type == sec.Type {
					return &UniqueTypeError{Type: sec.Type, Existing: e.Name}
				}
			}
		}
		plain, err := json.Marshal(sec)
		if err != nil {
			return err
		}
		sealed, err := s.keyring.Seal(plain, secretAAD(sec.Owner, sec.Name))
		if err != nil {
			return err
		}
		return b.Put([]byte(sec.Name), sealed)
	})
}

// GetSecret reads one of owner's secrets, values included.
func (s *Store) GetSecret(owner, name string) (*Secret, error) {
	var sec *Secret
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets).Bucket([]byte(owner))
		if b == nil {
			return fmt.Errorf("secret %s: %w", name, ErrNotFound)
		}
		v := b.Get([]byte(name))
		if v == nil {
			return fmt.Errorf("secret %s: %w", name, ErrNotFound)
		}
		var err error
		sec, err = s.open(v, owner, name)
		return err
	})
	return sec, err
}

// ListSecrets returns all of owner's secrets, values included, by name.
func (s *Store) ListSecrets(owner string) ([]*Secret, error) {
	var out []*Secret
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets).Bucket([]byte(owner))
		if b == nil {
			return nil
		}
		var err error
		out, err = s.secretsIn(b, owner)
		return err
	})
	return out, err
}

// DeleteSecret removes one of owner's secrets and leaves a tombstone for
// its id, so that copying a stale replica from another cluster never
// brings it back. When id is not empty, it deletes only a secret holding that id
// and fails with ErrConflict otherwise, so that repairing one replica never
// deletes a different secret of the same name.
func (s *Store) DeleteSecret(owner, name, id string) (*api.Tombstone, error) {
	var grave *api.Tombstone
	err := s.db.Update(func(tx *bolt.Tx) error {
		var sealed []byte
		b := tx.Bucket(bucketSecrets).Bucket([]byte(owner))
		if b != nil {
			sealed = b.Get([]byte(name))
		}
		if sealed == nil {
			return fmt.Errorf("secret %s: %w", name, ErrNotFound)
		}
		sec, err := s.open(sealed, owner, name)
		if err != nil {
			return err
		}
		if id != "" && sec.ID != id {
			return fmt.Errorf("secret %s holds id %s, not %s: %w", name, sec.ID, id, ErrConflict)
		}
		graves, err := tx.Bucket(bucketTombstones).CreateBucketIfNotExists([]byte(owner))
		if err != nil {
			return err
		}
		grave = &api.Tombstone{ID: sec.ID, Name: name, DeletedAt: time.Now().UTC()}
		v, err := json.Marshal(grave)
		if err != nil {
			return err
		}
		if err := graves.Put([]byte(sec.ID), v); err != nil {
			return err
		}
		return b.Delete([]byte(name))
	})
	return grave, err
}

// ListTombstones returns owner's tombstones, oldest first.
func (s *Store) ListTombstones(owner string) ([]*api.Tombstone, error) {
	var out []*api.Tombstone
	err := s.db.View(func(tx *bolt.Tx) error {
		graves := tx.Bucket(bucketTombstones).Bucket([]byte(owner))
		if graves == nil {
			return nil
		}
		return graves.ForEach(func(_, v []byte) error {
			var t api.Tombstone
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

func (s *Store) secretsIn(b *bolt.Bucket, owner string) ([]*Secret, error) {
	var out []*Secret
	err := b.ForEach(func(k, v []byte) error {
		sec, err := s.open(v, owner, string(k))
		if err != nil {
			return err
		}
		out = append(out, sec)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func (s *Store) open(sealed []byte, owner, name string) (*Secret, error) {
	plain, err := s.keyring.Open(sealed, secretAAD(owner, name))
	if err != nil {
		return nil, fmt.Errorf("open secret %s/%s: %w", owner, name, err)
	}
	var sec Secret
	if err := json.Unmarshal(plain, &sec); err != nil {
		return nil, fmt.Errorf("decode secret %s/%s: %w", owner, name, err)
	}
	return &sec, nil
}
