package store

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

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
	return writeKeyringFile(path, kf)
}

// writeKeyringFile writes kf to the keyring file at path, whole or not at
// all.
func writeKeyringFile(path string, kf *keyringFile) error {
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
