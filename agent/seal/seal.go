// Package seal holds the seals that wrap the agent's keyring with a
// key-encryption key kept outside the data dir: a key file, a key in an
// environment variable, and HashiCorp Vault's (or OpenBao's) Transit
// engine. The store consumes them through store.Seal.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/store"
)

// KeySize is the size of a file or env seal's key: AES-256.
const KeySize = 32

// wrapVersion is the first byte of what the AES-GCM seals wrap, so that
// the format can change without guessing.
const wrapVersion = 1

// wrapAAD binds a wrapped keyring to its purpose.
var wrapAAD = []byte("hush keyring seal v1")

// ErrWrongKey is returned by Unwrap when the seal's key did not wrap the
// data.
var ErrWrongKey = errors.New("the seal's key does not open the keyring (it is another key)")

var (
	_ store.Seal = (*File)(nil)
	_ store.Seal = (*Env)(nil)
	_ store.Seal = (*Transit)(nil)
)

// New returns the seal that cfg (from config.SealFor) describes. dataDir
// is the agent's data dir: a key file inside it is refused.
func New(cfg *config.SealConfig, dataDir string, logger hclog.Logger) (store.Seal, error) {
	switch cfg.Kind {
	case config.SealFile:
		if dataDir != "" && config.Inside(cfg.Path, dataDir) {
			return nil, fmt.Errorf("seal key file %s is inside the data dir %s, so a copy of the data dir would open everything: "+
				"give seal \"file\" a path elsewhere, such as /etc/hush/seal.key", cfg.Path, dataDir)
		}
		return NewFile(cfg.Path, logger)
	case config.SealEnv:
		return NewEnv(cfg.Var)
	case config.SealTransit:
		return NewTransit(cfg, logger)
	}
	return nil, fmt.Errorf("unknown seal kind %q: the kinds are file, env and transit", cfg.Kind)
}

// gcm returns AES-256-GCM under key.
func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// wrap seals plaintext under aead: version, nonce, ciphertext.
func wrap(aead cipher.AEAD, plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = wrapVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return aead.Seal(out, out[1:], plaintext, wrapAAD), nil
}

// unwrap opens what wrap returned.
func unwrap(aead cipher.AEAD, ciphertext []byte) ([]byte, error) {
	switch {
	case len(ciphertext) < 1+aead.NonceSize()+aead.Overhead():
		return nil, errors.New("the wrapped keyring is too short")
	case ciphertext[0] != wrapVersion:
		return nil, fmt.Errorf("the wrapped keyring has format %d (written by a newer hush?)", ciphertext[0])
	}
	n := 1 + aead.NonceSize()
	plain, err := aead.Open(nil, ciphertext[1:n], ciphertext[n:], wrapAAD)
	if err != nil {
		return nil, ErrWrongKey
	}
	return plain, nil
}
