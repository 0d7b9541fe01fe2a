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
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// KeyringFile is the name of the keyring in the data dir.
const KeyringFile = "keyring"

// sealVersion is the first byte of every sealed record, so that the format
// can change without guessing.
const sealVersion = 1

// Keyring holds the AES-256 keys that seal records. New records are sealed
// under the active key; older keys stay to open what they sealed until
// rotation has sealed it again under the active one. It is safe for
// concurrent use: a change of keys swaps in a whole new key set.
type Keyring struct {
	// mu serializes changes of the key set; Seal and Open only load it.
	mu   sync.Mutex
	keys atomic.Pointer[keySet]
}

// keySet is one version of a keyring's keys: what its file holds, and a
// cipher for each key.
type keySet struct {
	file  keyringFile
	aeads map[uint32]cipher.AEAD
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
	// RetiredAt is when rotation found nothing left sealed under the key,
	// which can then be pruned. Zero for the active key and for keys that
	// still seal something.
	RetiredAt time.Time `json:"retired_at,omitzero"`
}

func newKeyring(kf *keyringFile) (*Keyring, error) {
	if len(kf.DigestKey) != 32 {
		return nil, fmt.Errorf("keyring digest key is %d bytes, want 32", len(kf.DigestKey))
	}
	ks, err := newKeySet(kf)
	if err != nil {
		return nil, err
	}
	kr := &Keyring{}
	kr.keys.Store(ks)
	return kr, nil
}

func newKeySet(kf *keyringFile) (*keySet, error) {
	ks := &keySet{file: *kf, aeads: make(map[uint32]cipher.AEAD, len(kf.Keys))}
	ks.file.Keys = slices.Clone(kf.Keys)
	for _, k := range kf.Keys {
		aead, err := newAEAD(k.Key)
		if err != nil {
			return nil, fmt.Errorf("keyring key %d: %w", k.ID, err)
		}
		ks.aeads[k.ID] = aead
	}
	if _, ok := ks.aeads[kf.Active]; !ok {
		return nil, fmt.Errorf("keyring names active key %d but does not hold it", kf.Active)
	}
	return ks, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("key is %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// KeyringOf returns a keyring of the one 32-byte key given, such as a run
// log's own key: it seals and opens, in the keyring's format. It has no
// digest key: do not take digests with it.
func KeyringOf(key []byte) (*Keyring, error) {
	ks, err := newKeySet(&keyringFile{Active: 1, Keys: []keyringKey{{ID: 1, Key: key}}})
	if err != nil {
		return nil, err
	}
	kr := &Keyring{}
	kr.keys.Store(ks)
	return kr, nil
}

// NewDataKey returns a fresh random 32-byte key for KeyringOf.
func NewDataKey() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}

// ActiveKey returns the id of the key that seals new records.
func (k *Keyring) ActiveKey() uint32 { return k.keys.Load().file.Active }

// KeyOf returns the id of the key that sealed what Seal returned, and
// false when sealed is not in the keyring's format.
func KeyOf(sealed []byte) (uint32, bool) {
	if len(sealed) < 5 || sealed[0] != sealVersion {
		return 0, false
	}
	return binary.BigEndian.Uint32(sealed[1:5]), true
}

// KeyInfo describes one key of a keyring, never its bytes.
type KeyInfo struct {
	ID        uint32
	Active    bool
	CreatedAt time.Time
	RetiredAt time.Time
}

// Keys describes the keyring's keys, oldest first.
func (k *Keyring) Keys() []KeyInfo {
	ks := k.keys.Load()
	out := make([]KeyInfo, len(ks.file.Keys))
	for i, key := range ks.file.Keys {
		out[i] = KeyInfo{ID: key.ID, Active: key.ID == ks.file.Active, CreatedAt: key.CreatedAt, RetiredAt: key.RetiredAt}
	}
	return out
}

// install makes kf the keyring's keys, as a cluster's log gives them.
func (k *Keyring) install(kf *keyringFile) error {
	if len(kf.DigestKey) != 32 {
		return fmt.Errorf("keyring digest key is %d bytes, want 32", len(kf.DigestKey))
	}
	ks, err := newKeySet(kf)
	if err != nil {
		return err
	}
	k.keys.Store(ks)
	return nil
}

// KeyringOfFile returns the keyring kf holds, unchanged.
func KeyringOfFile(kf *keyringFile) (*Keyring, error) {
	ks, err := newKeySet(kf)
	if err != nil {
		return nil, err
	}
	kr := &Keyring{}
	kr.keys.Store(ks)
	return kr, nil
}

// file returns a copy of what the keyring's file holds.
func (k *Keyring) file() *keyringFile {
	kf := k.keys.Load().file
	kf.Keys = slices.Clone(kf.Keys)
	return &kf
}

// sealsWith reports whether key id may seal what is written: the
// keyring holds it, and it is not retired.
func (k *Keyring) sealsWith(id uint32) bool {
	for _, key := range k.keys.Load().file.Keys {
		if key.ID == id {
			return key.RetiredAt.IsZero()
		}
	}
	return false
}

// change applies edit to a copy of the keyring's file and has save make it
// the keyring: readers see either the old keys or the new ones, and the
// new ones only once they are on disk.
func (k *Keyring) change(edit func(*keyringFile) error, save func(*keyringFile) error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.keys.Load()
	kf := old.file
	kf.Keys = slices.Clone(old.file.Keys)
	if err := edit(&kf); err != nil {
		return err
	}
	if _, err := newKeySet(&kf); err != nil {
		return err
	}
	// save makes it the keyring, here and on every server, in the log's
	// order.
	return save(&kf)
}

// Digest returns a keyed digest of b (HMAC-SHA256 under the keyring's
// digest key), hex encoded. Equal inputs give equal digests on one
// agent, and a digest tells nothing about b to whoever lacks the keyring.
func (k *Keyring) Digest(b []byte) string {
	mac := hmac.New(sha256.New, k.keys.Load().file.DigestKey)
	mac.Write(b)
	return hex.EncodeToString(mac.Sum(nil))
}

// AuditKey returns the key of the agent's audit hashes: derived from the
// digest key, so that it stays the same while sealing keys come and go,
// and differs from it, so that an audit hash is never a secret's digest.
func (k *Keyring) AuditKey() []byte {
	mac := hmac.New(sha256.New, k.keys.Load().file.DigestKey)
	mac.Write([]byte("hush audit key 1"))
	return mac.Sum(nil)
}

// Seal encrypts plaintext under the active key with a fresh random nonce,
// binding it to aad. The output is version, key id, nonce, ciphertext.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	ks := k.keys.Load()
	aead := ks.aeads[ks.file.Active]
	out := make([]byte, 5, 5+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	binary.BigEndian.PutUint32(out[1:5], ks.file.Active)
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
	aead, ok := k.keys.Load().aeads[binary.BigEndian.Uint32(sealed[1:5])]
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
