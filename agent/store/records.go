package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// Secret records come in two parts, so that listing never reads values:
//
//   - bucket "secrets", per owner, by name: the metadata record, format
//     byte 2, then a uvarint length and an unsealed header (id, type,
//     created_at) as JSON, then the sealed rest of the metadata (fields,
//     provider reference, digest). The header is part of the additional
//     data, so changing it makes the record fail to open.
//   - bucket "values", per owner, by name: the value record, format byte 2,
//     then the sealed data, bound to the secret's owner, name and id.
//
// hush 0.1 kept one record per secret, the whole secret sealed; its first
// byte is the seal version, 1. Open migrates those records.
const (
	formatLegacy = 1
	formatV2     = 2
)

// secretHeader is the part of a secret's metadata kept unsealed, so that a
// record whose sealed part cannot be opened can still be reported by id and
// type, and deleted with a tombstone.
type secretHeader struct {
	ID        string         `json:"id"`
	Type      api.SecretType `json:"type"`
	CreatedAt time.Time      `json:"created_at"`
}

// sealedMeta is the sealed part of a secret's metadata.
type sealedMeta struct {
	Fields map[string]string `json:"fields,omitempty"`
	From   string            `json:"from,omitempty"`
	// Digest is computed once, when the secret is created, so that listing
	// digests never opens values.
	Digest string `json:"digest"`
}

// sealedValue is what a value record seals.
type sealedValue struct {
	Data map[string][]byte `json:"data,omitempty"`
}

// ErrUnknownFormat is returned for a record whose format byte this agent
// does not know, such as one written by a newer hush.
var ErrUnknownFormat = errors.New("unknown record format")

// RecordError says that one stored secret cannot be read. It names the
// secret and, when its header could be read, its id and type, so that the
// owner can delete it. It matches the cause: ErrCorrupt or ErrUnknownFormat.
type RecordError struct {
	Owner string
	Name  string
	ID    string // empty when not known
	Type  api.SecretType
	Err   error
}

func (e *RecordError) Error() string {
	id := ""
	if e.ID != "" {
		id = " (id " + e.ID + ")"
	}
	return fmt.Sprintf("read secret %s/%s%s: %v", e.Owner, e.Name, id, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

func metaAAD(owner, name string, header []byte) []byte {
	aad := secretAAD(owner, name)
	aad = append(aad, 0)
	return append(aad, header...)
}

func valueAAD(owner, name, id string) []byte {
	return []byte(string(bucketValues) + "/" + owner + "/" + name + "/" + id)
}

// encodeSecret seals sec into its metadata and value records.
func (s *Store) encodeSecret(sec *Secret, digest string) (meta, value []byte, err error) {
	header, err := json.Marshal(&secretHeader{ID: sec.ID, Type: sec.Type, CreatedAt: sec.CreatedAt})
	if err != nil {
		return nil, nil, err
	}
	plain, err := json.Marshal(&sealedMeta{Fields: sec.Fields, From: sec.From, Digest: digest})
	if err != nil {
		return nil, nil, err
	}
	sealed, err := s.keyring.Seal(plain, metaAAD(sec.Owner, sec.Name, header))
	if err != nil {
		return nil, nil, err
	}
	meta = binary.AppendUvarint([]byte{formatV2}, uint64(len(header)))
	meta = append(append(meta, header...), sealed...)

	plain, err = json.Marshal(&sealedValue{Data: sec.Data})
	if err != nil {
		return nil, nil, err
	}
	sealed, err = s.keyring.Seal(plain, valueAAD(sec.Owner, sec.Name, sec.ID))
	if err != nil {
		return nil, nil, err
	}
	return meta, append([]byte{formatV2}, sealed...), nil
}

// decodeMeta reads a metadata record without touching values. A record in
// the 0.1 format (one that migration could not open) is opened whole.
func (s *Store) decodeMeta(owner, name string, rec []byte) (*SecretMeta, *RecordError) {
	fail := func(h *secretHeader, err error) (*SecretMeta, *RecordError) {
		re := &RecordError{Owner: owner, Name: name, Err: err}
		if h != nil {
			re.ID, re.Type = h.ID, h.Type
		}
		return nil, re
	}
	if len(rec) == 0 {
		return fail(nil, fmt.Errorf("%w: empty record", ErrCorrupt))
	}
	switch rec[0] {
	case formatLegacy:
		sec, err := s.openLegacy(rec, owner, name)
		if err != nil {
			return fail(nil, err)
		}
		m := sec.Meta()
		m.Digest = s.Digest(sec)
		return m, nil
	case formatV2:
	default:
		return fail(nil, fmt.Errorf("%w: format %d (written by a newer hush?)", ErrUnknownFormat, rec[0]))
	}
	n, k := binary.Uvarint(rec[1:])
	if k <= 0 || uint64(len(rec)-1-k) < n {
		return fail(nil, fmt.Errorf("%w: bad header length", ErrCorrupt))
	}
	header := rec[1+k : 1+k+int(n)]
	var h secretHeader
	if err := json.Unmarshal(header, &h); err != nil {
		return fail(nil, fmt.Errorf("%w: header: %v", ErrCorrupt, err))
	}
	plain, err := s.keyring.Open(rec[1+k+int(n):], metaAAD(owner, name, header))
	if err != nil {
		return fail(&h, err)
	}
	var sm sealedMeta
	if err := json.Unmarshal(plain, &sm); err != nil {
		return fail(&h, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err))
	}
	return &SecretMeta{
		ID: h.ID, Name: name, Owner: owner, Type: h.Type, CreatedAt: h.CreatedAt,
		Fields: sm.Fields, From: sm.From, Digest: sm.Digest,
	}, nil
}

// decodeSecret reads a whole secret from its metadata record and its value
// record (nil when missing).
func (s *Store) decodeSecret(owner, name string, rec, value []byte) (*Secret, *RecordError) {
	if len(rec) > 0 && rec[0] == formatLegacy {
		sec, err := s.openLegacy(rec, owner, name)
		if err != nil {
			return nil, &RecordError{Owner: owner, Name: name, Err: err}
		}
		return sec, nil
	}
	m, rerr := s.decodeMeta(owner, name, rec)
	if rerr != nil {
		return nil, rerr
	}
	fail := func(err error) (*Secret, *RecordError) {
		return nil, &RecordError{Owner: owner, Name: name, ID: m.ID, Type: m.Type, Err: err}
	}
	switch {
	case len(value) == 0:
		return fail(fmt.Errorf("%w: its value record is missing", ErrCorrupt))
	case value[0] != formatV2:
		return fail(fmt.Errorf("%w: value record format %d (written by a newer hush?)", ErrUnknownFormat, value[0]))
	}
	plain, err := s.keyring.Open(value[1:], valueAAD(owner, name, m.ID))
	if err != nil {
		return fail(fmt.Errorf("value: %w", err))
	}
	var sv sealedValue
	if err := json.Unmarshal(plain, &sv); err != nil {
		return fail(fmt.Errorf("%w: value: %v", ErrCorrupt, err))
	}
	return &Secret{
		ID: m.ID, Name: name, Type: m.Type, Owner: owner, CreatedAt: m.CreatedAt,
		Fields: m.Fields, Data: sv.Data, From: m.From,
	}, nil
}

// openLegacy opens a secret record written by hush 0.1: the whole secret,
// sealed.
func (s *Store) openLegacy(sealed []byte, owner, name string) (*Secret, error) {
	plain, err := s.keyring.Open(sealed, secretAAD(owner, name))
	if err != nil {
		return nil, err
	}
	var sec Secret
	if err := json.Unmarshal(plain, &sec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return &sec, nil
}

// recordHeader reads the unsealed header of a metadata record, or, for a
// 0.1 record, opens it. It returns a nil header when neither works.
func (s *Store) recordHeader(owner, name string, rec []byte) *secretHeader {
	if len(rec) == 0 {
		return nil
	}
	switch rec[0] {
	case formatLegacy:
		sec, err := s.openLegacy(rec, owner, name)
		if err != nil {
			return nil
		}
		return &secretHeader{ID: sec.ID, Type: sec.Type, CreatedAt: sec.CreatedAt}
	case formatV2:
		n, k := binary.Uvarint(rec[1:])
		if k <= 0 || uint64(len(rec)-1-k) < n {
			return nil
		}
		var h secretHeader
		if json.Unmarshal(rec[1+k:1+k+int(n)], &h) != nil {
			return nil
		}
		return &h
	}
	return nil
}
