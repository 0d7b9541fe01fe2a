package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/hush-sh/hush/agent/pki"
	bolt "go.etcd.io/bbolt"
)

var (
	// keyRunCA holds the run CA (see pki.RunCA), sealed under the keyring
	// as it is: the sealed bytes start with their own format version.
	// Keyring rotation re-seals it with the same additional data.
	keyRunCA = []byte("run-ca")
	runCAAAD = []byte("meta/run-ca")
)

// runCARecord is what keyRunCA seals.
type runCARecord struct {
	Cert []byte `json:"cert"` // PEM
	Key  []byte `json:"key"`  // PEM, PKCS #8
}

// RunCA returns the agent's run CA, which signs the client certificates of
// its runs, making it on first use. It lives in the store, not in a file,
// because runs outlive the agent: an adopted run's certificate must still
// be trusted by the next agent on this data dir.
func (s *Store) RunCA() (certPEM, keyPEM []byte, err error) {
	rec, err := s.runCA()
	if err != nil {
		return nil, nil, err
	}
	return rec.Cert, rec.Key, nil
}

func (s *Store) runCA() (*runCARecord, error) {
	rec, err := s.readRunCA()
	if err != nil || rec != nil {
		return rec, err
	}
	ca, err := pki.NewRunCA()
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(runCARecord{Cert: ca.Cert, Key: ca.Key})
	if err != nil {
		return nil, fmt.Errorf("encode run CA: %w", err)
	}
	idx, err := s.writeAt(func() (*command, error) {
		sealed, err := s.keyring.Seal(plain, runCAAAD)
		if err != nil {
			return nil, fmt.Errorf("seal run CA: %w", err)
		}
		return &command{Op: opRunCA, Value: sealed}, nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("store run CA: %w", err)
	}
	// Read back here: this server applies it behind the leader.
	ctx, cancel := context.WithTimeout(context.Background(), replicateTimeout)
	defer cancel()
	if err := s.waitApplied(ctx, idx); err != nil {
		return nil, fmt.Errorf("store run CA: %w", err)
	}
	if rec, err = s.readRunCA(); err == nil && rec == nil {
		err = fmt.Errorf("read run CA: %w: missing after it was stored", ErrCorrupt)
	}
	return rec, err
}

// readRunCA returns the stored run CA, or nil when there is none yet.
func (s *Store) readRunCA() (*runCARecord, error) {
	var sealed []byte
	s.db.View(func(tx *bolt.Tx) error {
		sealed = bytes.Clone(tx.Bucket(bucketMeta).Get(keyRunCA))
		return nil
	})
	if sealed == nil {
		return nil, nil
	}
	plain, err := s.keyring.Open(sealed, runCAAAD)
	if err != nil {
		return nil, fmt.Errorf("open run CA: %w", err)
	}
	var rec runCARecord
	if err := json.Unmarshal(plain, &rec); err != nil || len(rec.Cert) == 0 || len(rec.Key) == 0 {
		return nil, fmt.Errorf("read run CA: %w: not a run CA record", ErrCorrupt)
	}
	return &rec, nil
}

// applyRunCA stores the sealed run CA Value, unless there is one: when two
// make one at once, the first one's stays.
func applyRunCA(tx *bolt.Tx, c *command) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyRunCA) != nil {
		return nil
	}
	return meta.Put(keyRunCA, c.Value)
}
