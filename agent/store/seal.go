package store

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
)

// Seal wraps the keyring with a key-encryption key kept outside the data
// dir, so that a copy of the data dir alone opens nothing. The agent/seal
// package holds the kinds: a key file, a key in the environment, Vault's
// Transit engine.
type Seal interface {
	// Kind names the seal ("file", "env", "transit"); the wrapped keyring
	// records it, so that a mismatch can be named.
	Kind() string
	// Wrap encrypts the keyring's bytes.
	Wrap(ctx context.Context, plaintext []byte) ([]byte, error)
	// Unwrap decrypts what Wrap returned, and fails when the seal's key
	// is not the one that wrapped it.
	Unwrap(ctx context.Context, ciphertext []byte) ([]byte, error)
}

// Option configures Open.
type Option func(*options)

type options struct {
	seal Seal
}

// WithSeal makes Open keep the keyring wrapped by seal, and wrap a plain
// keyring it finds (a data dir of an older hush) on the spot.
func WithSeal(s Seal) Option { return func(o *options) { o.seal = s } }

// sealedKeyring is the keyring file's form under a seal. Its "seal" field
// tells it from a plain keyring, which has none.
type sealedKeyring struct {
	Seal       string `json:"seal"`
	Ciphertext []byte `json:"ciphertext"`
}

// KeyringSeal returns the kind of seal that wraps the keyring in the data
// dir dir, or "" when the keyring is plain or missing.
func KeyringSeal(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, KeyringFile))
	if err != nil {
		return ""
	}
	var sk sealedKeyring
	if json.Unmarshal(b, &sk) != nil {
		return ""
	}
	return sk.Seal
}
