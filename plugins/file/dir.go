package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
)

// dirSource serves one file per secret from a directory. It goes through
// os.Root, so neither "../x" nor a symlink that leads out of the
// directory reaches a file outside it; symlinks within it (as in a
// Kubernetes secret volume) are followed.
type dirSource struct {
	dir string
}

func (s *dirSource) resolve(refs []string) []provider.Result {
	results := make([]provider.Result, len(refs))
	root, err := os.OpenRoot(s.dir)
	if root != nil {
		defer root.Close()
	}
	for i, ref := range refs {
		results[i].Reference = ref
		switch {
		case err != nil:
			results[i].Err = fileErr("open dir "+s.dir, err)
		default:
			results[i].Value, results[i].Err = s.read(root, ref)
		}
	}
	return results
}

func (s *dirSource) read(root *os.Root, ref string) ([]byte, error) {
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	fi, err := root.Stat(ref)
	if err != nil {
		return nil, fileErr("read "+ref, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("read %s: it is a directory, not a file", ref)
	}
	// Not read at all: no secret may be that large, and the agent would
	// refuse it anyway.
	if fi.Size() > api.MaxSecretSize {
		return nil, fmt.Errorf("read %s: it is %d bytes, over the %d-byte (1 MiB) limit of a secret", ref, fi.Size(), api.MaxSecretSize)
	}
	data, err := root.ReadFile(ref)
	if err != nil {
		return nil, fileErr("read "+ref, err)
	}
	return data, nil
}

// put writes the file through a temporary file and a rename, so that a
// reader sees the old value or the new one and never half of it.
func (s *dirSource) put(ref string, value []byte) error {
	if err := checkRef(ref); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return fileErr("put: open dir "+s.dir, err)
	}
	defer root.Close()
	parent := filepath.Dir(ref)
	if err := root.MkdirAll(parent, 0o700); err != nil {
		return fileErr("put: create dir "+parent, err)
	}
	tmp := filepath.Join(parent, ".hush-tmp-"+randomSuffix())
	if err := writeSynced(root, tmp, value); err != nil {
		root.Remove(tmp)
		return fileErr("put: write "+ref, err)
	}
	if err := root.Rename(tmp, ref); err != nil {
		root.Remove(tmp)
		return fileErr("put: rename into "+ref, err)
	}
	// Make the rename itself durable.
	if d, err := root.Open(parent); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func writeSynced(root *os.Root, name string, value []byte) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(value); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *dirSource) delete(ref string) error {
	if err := checkRef(ref); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return fileErr("delete: open dir "+s.dir, err)
	}
	defer root.Close()
	fi, err := root.Lstat(ref)
	if err != nil {
		return fileErr("delete "+ref, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("delete %s: it is a directory, not a file", ref)
	}
	if err := root.Remove(ref); err != nil {
		return fileErr("delete "+ref, err)
	}
	return nil
}

// checkRef refuses references that name no file below the directory.
func checkRef(ref string) error {
	if ref == "" {
		return errors.New("reference is empty: name a file in the directory")
	}
	if !filepath.IsLocal(ref) {
		return fmt.Errorf("reference %q leads outside the directory: %w", ref, provider.ErrPermissionDenied)
	}
	return nil
}

// fileErr turns a file system error into ErrNotFound or
// ErrPermissionDenied where it is one.
func fileErr(what string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such file: %w", what, provider.ErrNotFound)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: the plugin may not read it: %w", what, provider.ErrPermissionDenied)
	case escapesRoot(err):
		return fmt.Errorf("%s: a symlink leads outside the directory: %w", what, provider.ErrPermissionDenied)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// escapesRoot reports whether os.Root refused a path for leaving the
// root. The os package does not export that error, so its text is
// compared; a test with an escaping symlink guards the text.
func escapesRoot(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Err.Error() == "path escapes from parent"
}

func randomSuffix() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
