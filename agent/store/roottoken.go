package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// RootTokenFile is the file in the data dir that receives the root token,
// the management token a new agent creates, so that it never reaches a log.
const RootTokenFile = "root.token"

// EnsureRootToken makes sure a management token exists. When none does, it
// mints a root token as RegenerateRootToken does and returns the file's
// path; otherwise it returns "".
func (s *Store) EnsureRootToken() (string, error) {
	ok, err := s.HasManagementToken()
	if err != nil || ok {
		return "", err
	}
	return s.RegenerateRootToken()
}

// RegenerateRootToken mints a new management token for user root, writes
// it to RootTokenFile in the data dir (0600, replacing the file) and only
// then stores it, so that no token is ever stored that nobody can read.
// When storing fails, the file is put back as it was. Older management
// tokens stay valid. It returns the file's path.
func (s *Store) RegenerateRootToken() (string, error) {
	tok := &Token{User: "root", Management: true, Description: "root token"}
	secret, err := mintToken(tok)
	if err != nil {
		return "", err
	}
	path := filepath.Join(s.dir, RootTokenFile)
	before, readErr := os.ReadFile(path)
	if readErr != nil && !errors.Is(readErr, fs.ErrNotExist) {
		// A directory or an unreadable file in the way: say so before
		// anything is stored.
		return "", fmt.Errorf("write root token to %s: %w: it must be a file the agent can write, or not exist", path, readErr)
	}
	if err := WriteFileAtomic(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write root token to %s: %w: it must be a file the agent can write, or not exist", path, err)
	}
	if err := s.CreateToken(secret, tok); err != nil {
		var undo error
		if readErr == nil {
			undo = WriteFileAtomic(path, before, 0o600)
		} else {
			undo = os.Remove(path)
		}
		if undo != nil {
			undo = fmt.Errorf("and %s now holds a token that is not valid: %w", path, undo)
		}
		return "", errors.Join(fmt.Errorf("store root token: %w", err), undo)
	}
	return path, nil
}
