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

// DeleteSecret removes one of owner's secrets.
func (s *Store) DeleteSecret(owner, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets).Bucket([]byte(owner))
		if b == nil || b.Get([]byte(name)) == nil {
			return fmt.Errorf("secret %s: %w", name, ErrNotFound)
		}
		return b.Delete([]byte(name))
	})
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
