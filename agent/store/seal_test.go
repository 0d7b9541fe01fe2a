package store

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/sdk/api"
)

// testSeal is a Seal over AES-GCM with a key of its own; agent/seal holds
// the real kinds, which this package may not import.
type testSeal struct {
	kind string
	aead cipher.AEAD
}

func newTestSeal(t *testing.T, kind string) *testSeal {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	return &testSeal{kind: kind, aead: aead}
}

func (s *testSeal) Kind() string { return s.kind }

func (s *testSeal) Wrap(_ context.Context, p []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, p, nil), nil
}

func (s *testSeal) Unwrap(_ context.Context, c []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(c) < n {
		return nil, errors.New("too short")
	}
	p, err := s.aead.Open(nil, c[:n], c[n:], nil)
	if err != nil {
		return nil, errors.New("another key")
	}
	return p, nil
}

func openSealed(t *testing.T, dir string, seal Seal, logger hclog.Logger) *Store {
	t.Helper()
	s, err := Open(dir, logger, WithSeal(seal))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keyringKeys returns the keys a plain keyring file holds.
func keyringKeys(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kf keyringFile
	if err := json.Unmarshal(b, &kf); err != nil {
		t.Fatal(err)
	}
	keys := [][]byte{kf.DigestKey}
	for _, k := range kf.Keys {
		keys = append(keys, k.Key)
	}
	return keys
}

// assertWrapped fails unless the keyring file is wrapped by kind and
// holds none of keys, raw or base64.
func assertWrapped(t *testing.T, path, kind string, keys [][]byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sk sealedKeyring
	if err := json.Unmarshal(b, &sk); err != nil || sk.Seal != kind || len(sk.Ciphertext) == 0 {
		t.Fatalf("keyring file: got seal %q (%v), want one wrapped by %q", sk.Seal, err, kind)
	}
	if bytes.Contains(b, []byte(`"keys"`)) {
		t.Errorf("the wrapped keyring file shows its keys field")
	}
	for _, k := range keys {
		if len(k) > 0 && (bytes.Contains(b, k) || bytes.Contains(b, []byte(jsonBytes(k)))) {
			t.Errorf("the wrapped keyring file holds a key of the plain keyring")
		}
	}
}

func jsonBytes(b []byte) string { s, _ := json.Marshal(b); return strings.Trim(string(s), `"`) }

func TestSealedStoreOpens(t *testing.T) {
	dir := t.TempDir()
	seal := newTestSeal(t, "file")
	s := openSealed(t, dir, seal, hclog.NewNullLogger())
	if _, err := s.CreateSecret(envSecret("alice", "a", "value-a")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	assertWrapped(t, filepath.Join(dir, KeyringFile), "file", nil)

	s = openSealed(t, dir, seal, hclog.NewNullLogger())
	defer s.Close()
	got, err := s.GetSecret("alice", "a")
	if err != nil || string(got.Data[api.FieldValue]) != "value-a" {
		t.Fatalf("got %v, %v, want value-a", got, err)
	}
}

func TestSealWrapsPlainKeyring(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if _, err := s.CreateSecret(envSecret("alice", "a", "value-a")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, KeyringFile)
	plainKeys := keyringKeys(t, path)

	var logs bytes.Buffer
	seal := newTestSeal(t, "env")
	s = openSealed(t, dir, seal, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
	got, err := s.GetSecret("alice", "a")
	s.Close()
	if err != nil || string(got.Data[api.FieldValue]) != "value-a" {
		t.Fatalf("after wrapping: got %v, %v, want value-a", got, err)
	}
	assertWrapped(t, path, "env", plainKeys)
	if !strings.Contains(logs.String(), "[INFO]") || !strings.Contains(logs.String(), "wrapped the data dir's plain keyring") {
		t.Errorf("got logs %q, want an INFO line saying the keyring was wrapped", logs.String())
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("wrapped keyring mode: got %v, want 0600", fi.Mode().Perm())
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "."+KeyringFile+".tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("got temporary files %v, want none", leftovers)
	}
}

// TestSealedDataDirRefused is the copy of a data dir without its seal: it
// opens nothing and says why.
func TestSealedDataDirRefused(t *testing.T) {
	tests := map[string]struct {
		seal func(t *testing.T) Seal
		want []string
	}{
		"no seal":    {seal: func(*testing.T) Seal { return nil }, want: []string{`wrapped by a "file" seal`, "has no seal", `seal "file"`}},
		"other kind": {seal: func(t *testing.T) Seal { return newTestSeal(t, "env") }, want: []string{`wrapped by a "file" seal`, `configured with a "env" seal`}},
		"other key":  {seal: func(t *testing.T) Seal { return newTestSeal(t, "file") }, want: []string{`unwrap keyring`, "another key", "restore that key"}},
	}
	dir := t.TempDir()
	s := openSealed(t, dir, newTestSeal(t, "file"), hclog.NewNullLogger())
	if _, err := s.CreateSecret(envSecret("alice", "a", "value-a")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var opts []Option
			if sl := tc.seal(t); sl != nil {
				opts = append(opts, WithSeal(sl))
			}
			s, err := Open(dir, hclog.NewNullLogger(), opts...)
			if err == nil {
				s.Close()
				t.Fatal("got a store, want a refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
			if _, err := ReadKeyring(filepath.Join(dir, KeyringFile), nil); err == nil {
				t.Errorf("ReadKeyring opened a wrapped keyring without its seal")
			}
		})
	}
}

func TestPlainWriteOverWrappedKeyringRefused(t *testing.T) {
	dir := t.TempDir()
	s := openSealed(t, dir, newTestSeal(t, "file"), hclog.NewNullLogger())
	s.Close()
	path := filepath.Join(dir, KeyringFile)
	before, _ := os.ReadFile(path)
	err := writeKeyringFile(path, &keyringFile{Active: 1, Keys: []keyringKey{{ID: 1, Key: make([]byte, 32)}}, DigestKey: make([]byte, 32)})
	if err == nil || !strings.Contains(err.Error(), `wrapped by a "file" seal`) {
		t.Fatalf("got %v, want a refusal to unwrap by omission", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Errorf("the keyring file changed")
	}
}

func TestReadKeyringWithSeal(t *testing.T) {
	seal := newTestSeal(t, "file")
	dir := t.TempDir()
	s := openSealed(t, dir, seal, hclog.NewNullLogger())
	want := s.Keyring().Digest([]byte("x"))
	s.Close()
	kr, err := ReadKeyring(filepath.Join(dir, KeyringFile), seal)
	if err != nil {
		t.Fatal(err)
	}
	if got := kr.Digest([]byte("x")); got != want {
		t.Errorf("got digest %s, want %s", got, want)
	}
}

// TestSealWrapsKeyringWithoutDigestKey: a 0.1 keyring gets its digest key
// and is wrapped in the same write.
func TestSealWrapsKeyringWithoutDigestKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyringFile)
	key := bytes.Repeat([]byte{7}, 32)
	old := `{"active":1,"keys":[{"id":1,"key":"` + jsonBytes(key) + `","created_at":"2026-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	seal := newTestSeal(t, "file")
	first, err := loadKeyring(context.Background(), path, seal, hclog.New(&hclog.LoggerOptions{Output: &logs}))
	if err != nil {
		t.Fatal(err)
	}
	assertWrapped(t, path, "file", [][]byte{key})
	if !strings.Contains(logs.String(), "wrapped the data dir's plain keyring") {
		t.Errorf("got logs %q, want the wrap said", logs.String())
	}
	again, err := loadKeyring(context.Background(), path, seal, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if first.Digest([]byte("x")) != again.Digest([]byte("x")) {
		t.Error("the digest key added while wrapping was not kept")
	}
}
