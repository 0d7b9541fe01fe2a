package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
)

// LoadKeyring reads the plain keyring at path, creating it with a fresh
// random key (mode 0600) when it does not exist. It is loadKeyring without
// a seal, for tools and tests.
func LoadKeyring(path string) (*Keyring, error) {
	return loadKeyring(context.Background(), path, nil, hclog.NewNullLogger())
}

// loadKeyring reads the keyring at path, unwrapping it with seal, or
// creates it. With a seal, a plain keyring (from an older hush) is wrapped
// on the spot; a wrapped one without the seal that wrapped it is refused.
func loadKeyring(ctx context.Context, path string, seal Seal, logger hclog.Logger) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeyring(path, seal)
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
	kf, wrapped, err := decodeKeyringFile(ctx, path, b, seal)
	if err != nil {
		return nil, err
	}
	kf.seal = seal
	switch {
	case len(kf.DigestKey) == 0:
		// A keyring from before digests: give it a digest key (and wrap
		// it, with a seal).
		if err := kf.addDigestKey(path); err != nil {
			return nil, err
		}
	case seal != nil && !wrapped:
		if err := writeKeyringFile(path, kf); err != nil {
			return nil, err
		}
	}
	if seal != nil && !wrapped {
		logger.Info("wrapped the data dir's plain keyring with the seal; a copy of the data dir alone no longer opens it",
			"path", path, "seal", seal.Kind())
	}
	return newKeyring(kf)
}

// decodeKeyringFile parses a keyring file's bytes, unwrapping them with
// seal when the file is wrapped, and reports whether it was.
func decodeKeyringFile(ctx context.Context, path string, b []byte, seal Seal) (*keyringFile, bool, error) {
	var sk sealedKeyring
	if err := json.Unmarshal(b, &sk); err != nil {
		return nil, false, fmt.Errorf("parse keyring %s: %w", path, err)
	}
	var kf keyringFile
	if sk.Seal == "" {
		if err := json.Unmarshal(b, &kf); err != nil {
			return nil, false, fmt.Errorf("parse keyring %s: %w", path, err)
		}
		return &kf, false, nil
	}
	switch {
	case seal == nil:
		return nil, true, fmt.Errorf("keyring %s is wrapped by a %q seal, and this agent has no seal: "+
			"give it the seal %q block it ran with (a non-dev agent's default is seal \"file\" with its key at <data_dir>.seal.key), "+
			"and the seal's key; a copy of the data dir without the seal's key opens nothing", path, sk.Seal, sk.Seal)
	case seal.Kind() != sk.Seal:
		return nil, true, fmt.Errorf("keyring %s is wrapped by a %q seal, but this agent is configured with a %q seal: "+
			"configure the %q seal the keyring was wrapped with (hush does not change or remove a seal)", path, sk.Seal, seal.Kind(), sk.Seal)
	}
	plain, err := seal.Unwrap(ctx, sk.Ciphertext)
	if err != nil {
		return nil, true, fmt.Errorf("unwrap keyring %s with the %q seal: %w; the seal's key must be the one the keyring was wrapped with: "+
			"restore that key, as a copy of the data dir alone opens nothing", path, sk.Seal, err)
	}
	if err := json.Unmarshal(plain, &kf); err != nil {
		return nil, true, fmt.Errorf("parse keyring %s: %w", path, err)
	}
	return &kf, true, nil
}

// ReadKeyring reads the keyring at path, wrapped by seal when seal is not
// nil, and changes nothing: for tools that read a data dir beside a
// stopped agent.
func ReadKeyring(path string, seal Seal) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	kf, _, err := decodeKeyringFile(context.Background(), path, b, seal)
	if err != nil {
		return nil, err
	}
	return newKeyring(kf)
}

func (kf *keyringFile) addDigestKey(path string) error {
	kf.DigestKey = make([]byte, 32)
	if _, err := rand.Read(kf.DigestKey); err != nil {
		return fmt.Errorf("generate digest key: %w", err)
	}
	return writeKeyringFile(path, kf)
}

func createKeyring(path string, seal Seal) (*Keyring, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	kf := &keyringFile{Active: 1, Keys: []keyringKey{{ID: 1, Key: key, CreatedAt: time.Now().UTC()}}, seal: seal}
	if err := kf.addDigestKey(path); err != nil {
		return nil, err
	}
	return newKeyring(kf)
}

// writeKeyringFile is the one way the keyring file is written: kf as
// JSON, wrapped by kf's seal when it has one, through WriteFileAtomic, so
// that a crash leaves the old file or the whole new one. It refuses to
// write a plain keyring over a wrapped one, so that no path can undo a
// seal by leaving kf's seal out.
func writeKeyringFile(path string, kf *keyringFile) error {
	b, err := encodeKeyringFile(kf)
	if err != nil {
		return err
	}
	if kf.seal == nil {
		if old, err := os.ReadFile(path); err == nil {
			var sk sealedKeyring
			if json.Unmarshal(old, &sk) == nil && sk.Seal != "" {
				return fmt.Errorf("write keyring %s: it is wrapped by a %q seal, and this write has none", path, sk.Seal)
			}
		}
	}
	if err := WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("write keyring: %w", err)
	}
	return nil
}

// encodeKeyringFile returns what the keyring file holds for kf: kf as
// JSON, wrapped by kf's seal when it has one.
func encodeKeyringFile(kf *keyringFile) ([]byte, error) {
	b, err := json.Marshal(kf)
	if err != nil {
		return nil, fmt.Errorf("encode keyring: %w", err)
	}
	if kf.seal == nil {
		return b, nil
	}
	ct, err := kf.seal.Wrap(context.Background(), b)
	if err != nil {
		return nil, fmt.Errorf("wrap keyring with the %q seal: %w", kf.seal.Kind(), err)
	}
	sk := sealedKeyring{Seal: kf.seal.Kind(), Ciphertext: ct}
	if b, err = json.Marshal(sk); err != nil {
		return nil, fmt.Errorf("encode keyring: %w", err)
	}
	return b, nil
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

// removeKeyringTemps removes the temporary files that writes of the keyring
// in dir left behind when the agent died.
func removeKeyringTemps(dir string, logger hclog.Logger) {
	temps, _ := filepath.Glob(filepath.Join(dir, "."+KeyringFile+".tmp-*"))
	for _, p := range temps {
		if err := os.Remove(p); err != nil {
			logger.Warn("could not remove a leftover temporary keyring file", "path", p, "error", err)
		}
	}
}
