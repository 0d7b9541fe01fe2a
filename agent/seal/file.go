package seal

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// File is seal "file": a 32-byte key in a file outside the data dir,
// created 0400 the first time it wraps a keyring.
type File struct {
	path   string
	logger hclog.Logger

	mu   sync.Mutex
	aead cipher.AEAD // nil until the key is read or created
}

// NewFile returns the seal of the key file at path. It reads the key when
// the file exists; a missing file is created only when a keyring is
// wrapped, so that a keyring wrapped by a lost key is never met with a
// fresh one.
func NewFile(path string, logger hclog.Logger) (*File, error) {
	f := &File{path: path, logger: logger}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.load(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return f, nil
}

// Kind returns "file".
func (f *File) Kind() string { return "file" }

// Wrap encrypts plaintext under the key, creating the key file first when
// it does not exist.
func (f *File) Wrap(_ context.Context, plaintext []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aead == nil {
		if err := f.create(); err != nil {
			return nil, err
		}
	}
	return wrap(f.aead, plaintext)
}

// Unwrap decrypts what Wrap returned.
func (f *File) Unwrap(_ context.Context, ciphertext []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aead == nil {
		if err := f.load(); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("seal key file %s does not exist: restore the key file the keyring was wrapped with, "+
				"or give seal \"file\" { path = ... } where it is", f.path)
		} else if err != nil {
			return nil, err
		}
	}
	plain, err := unwrap(f.aead, ciphertext)
	if err != nil {
		return nil, fmt.Errorf("seal key file %s: %w", f.path, err)
	}
	return plain, nil
}

// load reads the key file, refusing one that others can read.
func (f *File) load() error {
	fi, err := os.Stat(f.path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("seal key file %s is not a regular file", f.path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("seal key file %s has mode %#o: group or other users can read it; run `chmod 400 %s`",
			f.path, fi.Mode().Perm(), f.path)
	}
	key, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("read seal key file: %w", err)
	}
	if len(key) != KeySize {
		return fmt.Errorf("seal key file %s holds %d bytes, want %d raw bytes (as hush creates it)", f.path, len(key), KeySize)
	}
	aead, err := gcm(key)
	if err != nil {
		return fmt.Errorf("seal key file %s: %w", f.path, err)
	}
	f.aead = aead
	return nil
}

// create writes a fresh random key to the key file, 0400, failing if the
// file appeared meanwhile, and makes its dir (0700) when missing.
func (f *File) create() error {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generate seal key: %w", err)
	}
	if err := mkdirDurable(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("create seal key dir: %w", err)
	}
	out, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		return fmt.Errorf("create seal key file: %w", err)
	}
	_, err = out.Write(key)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The keyring is wrapped under this key next: the key's name must
		// be on disk before that, or a crash could leave a wrapped keyring
		// and no key.
		err = syncDir(filepath.Dir(f.path))
	}
	if err != nil {
		os.Remove(f.path)
		return fmt.Errorf("write seal key file %s: %w", f.path, err)
	}
	if f.aead, err = gcm(key); err != nil {
		return err
	}
	f.logger.Info("created the seal key file; keep it, and back it up apart from the data dir: without it the keyring does not open",
		"path", f.path)
	return nil
}

// mkdirDurable makes dir and its missing parents (0700), each synced into
// its parent.
func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
