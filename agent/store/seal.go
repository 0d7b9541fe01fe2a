package store

import (
	"context"
	"fmt"
	"sync"
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

// SealLocator is implemented by a seal whose key can be found again from a
// string that is not secret, such as a key file's path.
type SealLocator interface {
	// Locator says where the key is, never what it is.
	Locator() string
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
	Seal string `json:"seal"`
	// KeyAt locates the seal's key when the seal can say where it is
	// (SealLocator), for ReadKeyring.
	KeyAt      string `json:"key_at,omitempty"`
	Ciphertext []byte `json:"ciphertext"`
}

var (
	openersMu   sync.Mutex
	sealOpeners = map[string]func(locator string) (Seal, error){}
)

// RegisterSealOpener lets ReadKeyring open a keyring wrapped by a seal of
// kind from the seal's locator alone, in processes that do not have the
// agent's config, such as a run's logger. It bridges until those
// processes no longer read the keyring.
func RegisterSealOpener(kind string, open func(locator string) (Seal, error)) {
	openersMu.Lock()
	defer openersMu.Unlock()
	sealOpeners[kind] = open
}

// sealFromLocator rebuilds the seal a wrapped keyring names, if a seal
// opener is registered for its kind.
func sealFromLocator(sk *sealedKeyring) (Seal, error) {
	openersMu.Lock()
	open := sealOpeners[sk.Seal]
	openersMu.Unlock()
	if open == nil || sk.KeyAt == "" {
		return nil, fmt.Errorf("the keyring is wrapped by a %q seal, which this process cannot open on its own", sk.Seal)
	}
	return open(sk.KeyAt)
}
