package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
}

type keyringKey struct {
	ID        uint32    `json:"id"`
	Key       []byte    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
}

// LoadKeyring reads the keyring at path, creating it with a fresh random key
// (mode 0600) when it does not exist.
func LoadKeyring(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeyring(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat keyring: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keyring %s has mode %v: other users can read it; run `chmod 600 %s`", path, fi.Mode().Perm(), path)
	}
	var kf keyringFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("parse keyring %s: %w", path, err)
	}
	if len(kf.DigestKey) == 0 {
		// A keyring from before digests: give it a digest key.
		if err := kf.addDigestKey(path); err != nil {
			return nil, err
		}
	}
	return newKeyring(&kf)
}

// ReadKeyring reads the keyring at path and changes nothing: for the
// processes other than the agent, such as a run's logger, that seal with
// the agent's keyring.
func ReadKeyring(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	var kf keyringFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("parse keyring %s: %w", path, err)
	}
	return newKeyring(&kf)
}

func (kf *keyringFile) addDigestKey(path string) error {
	kf.DigestKey = make([]byte, 32)
	if _, err := rand.Read(kf.DigestKey); err != nil {
		return fmt.Errorf("generate digest key: %w", err)
	}
	b, err := json.Marshal(kf)
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("write keyring: %w", err)
	}
	return nil
}

func createKeyring(path string) (*Keyring, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	kf := &keyringFile{Active: 1, Keys: []keyringKey{{ID: 1, Key: key, CreatedAt: time.Now().UTC()}}}
	if err := kf.addDigestKey(path); err != nil {
		return nil, err
	}
	return newKeyring(kf)
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

// WriteFileAtomic writes a file through a temporary file and a rename, so a
// crash leaves either the old file or the whole new one.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename is durable only once the directory is.
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
