package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRootTokenWrittenBeforeStored is issue 10 item 8: when root.token
// cannot be written, no management token is stored, so the next start
// tries again instead of leaving nobody able to create tokens.
func TestRootTokenWrittenBeforeStored(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, dir)
	path := filepath.Join(dir, RootTokenFile)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureRootToken(); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("root.token is a directory: got %v, want an error naming it", err)
	}
	if ok, _ := s.HasManagementToken(); ok {
		t.Fatal("a management token was stored though root.token was not written")
	}
	os.Remove(path)
	got, err := s.EnsureRootToken()
	if err != nil || got != path {
		t.Fatalf("got %q, %v; want %s written", got, err, path)
	}
	first := readToken(t, path)
	if tok, err := s.LookupToken(first); err != nil || !tok.Management {
		t.Fatalf("the written root token: %+v, %v; want a management token", tok, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("root.token mode %#o, want 0600", fi.Mode().Perm())
	}
	if again, err := s.EnsureRootToken(); err != nil || again != "" {
		t.Errorf("second EnsureRootToken: got %q, %v; want nothing done", again, err)
	}

	// Regenerating replaces the file with a new working token.
	if _, err := s.RegenerateRootToken(); err != nil {
		t.Fatal(err)
	}
	second := readToken(t, path)
	if second == first {
		t.Error("regenerate wrote the same token")
	}
	if tok, err := s.LookupToken(second); err != nil || !tok.Management {
		t.Errorf("regenerated token: %+v, %v; want a management token", tok, err)
	}
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
