package store

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// copyDataDir01 copies the data dir that hush 0.1 wrote to a temp dir,
// with the keyring's mode that git does not keep.
func copyDataDir01(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.CopyFS(dir, os.DirFS("../testdata/datadir-0.1")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, KeyringFile), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestUpgradeFrom01 opens a store written by hush 0.1 and reads everything
// it holds, after migrating its secret records in place.
func TestUpgradeFrom01(t *testing.T) {
	dir := copyDataDir01(t)
	s := openStore(t, dir)

	list, bad, err := s.ListSecrets("alice")
	if err != nil || len(bad) > 0 {
		t.Fatalf("list: %v, unreadable %v", err, bad)
	}
	got := map[string]*SecretMeta{}
	for _, m := range list {
		got[m.Name] = m
	}
	want := map[string]struct {
		typ    api.SecretType
		field  string
		fvalue string
		source string
	}{
		"secret-stuff": {api.TypeEnv, api.FieldKey, "SECRET_STUFF", api.SourceStored},
		"mounted-one":  {api.TypeMounted, "", "", api.SourceStored},
		"docker":       {api.TypeDocker, "username", "bob", api.SourceStored},
		"db-password":  {api.TypeEnv, api.FieldKey, "DB_PASSWORD", "file:db"},
	}
	if len(got) != len(want) {
		t.Errorf("got %d secrets, want %d", len(got), len(want))
	}
	for name, w := range want {
		m := got[name]
		if m == nil {
			t.Errorf("secret %s missing", name)
			continue
		}
		source := m.From
		if source == "" {
			source = "stored"
		}
		if m.Type != w.typ || m.ID == "" || m.CreatedAt.IsZero() || source != w.source || m.Digest == "" {
			t.Errorf("%s: got %+v, want type %s, source %s, an id, a time and a digest", name, m, w.typ, w.source)
		}
		if w.field != "" && m.Fields[w.field] != w.fvalue {
			t.Errorf("%s: got field %s=%q, want %q", name, w.field, m.Fields[w.field], w.fvalue)
		}
	}

	secs, bad, err := s.OpenSecrets("alice", nil)
	if err != nil || len(bad) > 0 {
		t.Fatalf("open: %v, unreadable %v", err, bad)
	}
	values := map[string]string{}
	for _, sec := range secs {
		values[sec.Name] = string(sec.Data[api.FieldValue])
		if sec.Type == api.TypeDocker {
			values[sec.Name] = string(sec.Data["password"])
		}
		if d := s.Digest(sec); d != got[sec.Name].Digest {
			t.Errorf("%s: listed digest %s, want the content's %s", sec.Name, got[sec.Name].Digest, d)
		}
	}
	for name, v := range map[string]string{"secret-stuff": "canary-env-value-17", "mounted-one": "canary-mounted-23", "docker": "canary-docker-pw-29", "db-password": ""} {
		if values[name] != v {
			t.Errorf("%s: got value %q, want %q", name, values[name], v)
		}
	}

	graves, err := s.ListTombstones("alice")
	if err != nil || len(graves) != 1 || graves[0].Name != "gone" {
		t.Errorf("got tombstones %v, %v; want one for gone", graves, err)
	}
	runs, err := s.ListRuns("alice")
	if err != nil || len(runs) != 1 || runs[0].Name != "old-run" || runs[0].Status != api.RunCompleted {
		t.Errorf("got runs %v, %v; want old-run COMPLETED", runs, err)
	}
	for _, tokFile := range []string{"alice.token", RootTokenFile} {
		b, err := os.ReadFile(filepath.Join(dir, tokFile))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupToken(string(b[:len(b)-1])); err != nil {
			t.Errorf("%s: %v", tokFile, err)
		}
	}

	// Every record is in the new format now, and a second open migrates
	// nothing and reads the same.
	s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSecrets).Bucket([]byte("alice")).ForEach(func(k, v []byte) error {
			if v[0] != formatV2 {
				t.Errorf("%s: format %d after migration, want %d", k, v[0], formatV2)
			}
			return nil
		})
	})
	s.Close()
	again := openStore(t, dir)
	if list, _, _ := again.ListSecrets("alice"); len(list) != len(want) {
		t.Errorf("reopened: got %d secrets, want %d", len(list), len(want))
	}
}

// TestMigrationKeepsUnreadable01Record: a 0.1 record that does not open is
// left as it was, reported by name, and deletable; the others migrate.
func TestMigrationKeepsUnreadable01Record(t *testing.T) {
	dir := copyDataDir01(t)
	db, err := bolt.Open(filepath.Join(dir, DBFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets).Bucket([]byte("alice"))
		v := append([]byte(nil), b.Get([]byte("docker"))...)
		v[len(v)-1] ^= 1
		return b.Put([]byte("docker"), v)
	})
	db.Close()
	s := openStore(t, dir)
	list, bad, err := s.ListSecrets("alice")
	if err != nil || len(list) != 3 || len(bad) != 1 || bad[0].Name != "docker" || bad[0].ID != "" {
		t.Fatalf("got %d secrets, unreadable %v, %v; want 3 and docker without an id", len(list), bad, err)
	}
	if _, err := s.DeleteSecret("alice", "docker", ""); err != nil {
		t.Errorf("delete the unreadable 0.1 record: %v", err)
	}
	if _, bad, _ := s.ListSecrets("alice"); len(bad) != 0 {
		t.Errorf("after delete: %d unreadable, want 0", len(bad))
	}
}
