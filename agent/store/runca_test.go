package store

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/hush-sh/hush/agent/pki"
	bolt "go.etcd.io/bbolt"
)

// TestRunCA: the run CA is made once, sealed under the keyring with its
// own additional data (never in clear in the data dir), and is the same
// after the store opens again, as adopted runs need.
func TestRunCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, dir)
	cert, key, err := s.RunCA()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadRunCA(&pki.PEM{Cert: cert, Key: key}); err != nil {
		t.Fatalf("got a run CA that does not load: %v", err)
	}
	again, _, err := s.RunCA()
	if err != nil || !bytes.Equal(again, cert) {
		t.Fatalf("second call: got a different CA (%v), want the same", err)
	}

	var sealed []byte
	s.db.View(func(tx *bolt.Tx) error {
		sealed = bytes.Clone(tx.Bucket(bucketMeta).Get([]byte("run-ca")))
		return nil
	})
	if len(sealed) == 0 || sealed[0] != sealVersion {
		t.Fatalf("meta/run-ca: got %d bytes starting %v, want sealed bytes starting with version %d", len(sealed), sealed[:min(1, len(sealed))], sealVersion)
	}
	if _, err := s.keyring.Open(sealed, []byte("meta/run-ca")); err != nil {
		t.Errorf("meta/run-ca does not open with additional data meta/run-ca: %v", err)
	}
	if _, err := s.keyring.Open(sealed, []byte("meta/other")); err == nil {
		t.Error("meta/run-ca opens with other additional data")
	}
	s.Close()
	for _, b := range [][]byte{key, []byte("PRIVATE KEY")} {
		if hits := grepDir(t, dir, b); len(hits) > 0 {
			t.Errorf("%.20q... is in clear in the data dir: %v", b, hits)
		}
	}

	s = openStore(t, dir)
	after, afterKey, err := s.RunCA()
	if err != nil || !bytes.Equal(after, cert) || !bytes.Equal(afterKey, key) {
		t.Errorf("after reopening: got another CA (%v), want the same", err)
	}

	// A record changed on disk is refused, not replaced.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		v := bytes.Clone(tx.Bucket(bucketMeta).Get(keyRunCA))
		v[len(v)-1] ^= 1
		return tx.Bucket(bucketMeta).Put(keyRunCA, v)
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RunCA(); err == nil {
		t.Error("tampered run CA: got no error, want one")
	}
}

// grepDir returns the files under dir that hold b.
func grepDir(t *testing.T, dir string, b []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		content, err := os.ReadFile(p)
		if bytes.Contains(content, b) {
			hits = append(hits, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}
