package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// KeyringFile is the name of the keyring in the data dir.
const KeyringFile = "keyring"

// sealVersion is the first byte of every sealed record, so that the format
// can change without guessing.
const sealVersion = 1

// Keyring holds the AES-256 keys that seal records. New records are sealed
// under the active key; older keys stay to open what they sealed.
type Keyring struct {
	active    uint32
	aeads     map[uint32]cipher.AEAD
	digestKey []byte
}

type keyringFile struct {
	Active uint32       `json:"active"`
	Keys   []keyringKey `json:"keys"`
	// DigestKey keys the HMAC of secret digests. It is its own key, so that
	// digests stay the same whichever sealing keys come and go.
	DigestKey []byte `json:"digest_key"`

	// seal, when set, wraps the file that writeKeyringFile writes.
	seal Seal
}

type keyringKey struct {
	ID        uint32    `json:"id"`
	Key       []byte    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
}

func newKeyring(kf *keyringFile) (*Keyring, error) {
	if len(kf.DigestKey) != 32 {
		return nil, fmt.Errorf("keyring digest key is %d bytes, want 32", len(kf.DigestKey))
	}
	kr := &Keyring{active: kf.Active, aeads: make(map[uint32]cipher.AEAD), digestKey: kf.DigestKey}
	for _, k := range kf.Keys {
		if len(k.Key) != 32 {
			return nil, fmt.Errorf("keyring key %d is %d bytes, want 32", k.ID, len(k.Key))
		}
		block, err := aes.NewCipher(k.Key)
		if err != nil {
			return nil, fmt.Errorf("keyring key %d: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keyring key %d: %w", k.ID, err)
		}
		kr.aeads[k.ID] = aead
	}
	if _, ok := kr.aeads[kr.active]; !ok {
		return nil, fmt.Errorf("keyring names active key %d but does not hold it", kr.active)
	}
	return kr, nil
}

// Digest returns a keyed digest of b (HMAC-SHA256 under the keyring's
// digest key), hex encoded. Equal inputs give equal digests on one
// agent, and a digest tells nothing about b to whoever lacks the keyring.
func (k *Keyring) Digest(b []byte) string {
	mac := hmac.New(sha256.New, k.digestKey)
	mac.Write(b)
	return hex.EncodeToString(mac.Sum(nil))
}

// AuditKey returns the key of the agent's audit hashes: derived from the
// digest key, so that it stays the same while sealing keys come and go,
// and differs from it, so that an audit hash is never a secret's digest.
func (k *Keyring) AuditKey() []byte {
	mac := hmac.New(sha256.New, k.digestKey)
	mac.Write([]byte("hush audit key 1"))
	return mac.Sum(nil)
}

// Seal encrypts plaintext under the active key with a fresh random nonce,
// binding it to aad. The output is version, key id, nonce, ciphertext.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	aead := k.aeads[k.active]
	out := make([]byte, 5, 5+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	binary.BigEndian.PutUint32(out[1:5], k.active)
	nonce := out[5 : 5+aead.NonceSize()]
	out = out[:5+aead.NonceSize()]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts what Seal produced with the same aad. It fails when the data
// or aad were changed.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	switch {
	case len(sealed) < 5:
		return nil, fmt.Errorf("%w: too short", ErrCorrupt)
	case sealed[0] != sealVersion:
		return nil, fmt.Errorf("%w: seal version %d (written by a newer hush?)", ErrUnknownFormat, sealed[0])
	}
	aead, ok := k.aeads[binary.BigEndian.Uint32(sealed[1:5])]
	if !ok {
		return nil, fmt.Errorf("%w: sealed under a key the keyring does not hold", ErrCorrupt)
	}
	rest := sealed[5:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrCorrupt
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrCorrupt)
	}
	return plain, nil
}
