package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// storeWithSecret makes a data dir whose store holds one secret, closed.
func storeWithSecret(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, dir)
	if _, err := s.CreateSecret(envSecret("alice", "a", "value-a")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return dir
}

func wantOpenError(t *testing.T, dir string, wants ...string) {
	t.Helper()
	s, err := Open(dir, hclog.NewNullLogger())
	if err == nil {
		s.Close()
		t.Fatalf("Open succeeded, want an error saying %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("got error %q, want it to say %q", err, w)
		}
	}
}

// TestMissingKeyringRefused is issue 10 item 6: a store whose keyring is
// gone must not start with a new one.
func TestMissingKeyringRefused(t *testing.T) {
	dir := storeWithSecret(t)
	keyPath := filepath.Join(dir, KeyringFile)
	if err := os.Rename(keyPath, keyPath+".away"); err != nil {
		t.Fatal(err)
	}
	wantOpenError(t, dir, keyPath, "is missing", "restore the keyring from a backup")
	if _, err := os.Stat(keyPath); err == nil {
		t.Error("a new keyring was written, want none")
	}
	if err := os.Rename(keyPath+".away", keyPath); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	if _, err := s.GetSecret("alice", "a"); err != nil {
		t.Errorf("with the keyring back: %v", err)
	}
}

func TestWrongKeyringRefused(t *testing.T) {
	tests := map[string]struct {
		dir func(t *testing.T) string
	}{
		"store with a check record": {dir: storeWithSecret},
		"0.1 store without one":     {dir: copyDataDir01},
		"store with only a run": {dir: func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "data")
			s := openStore(t, dir)
			if err := s.CreateRun(&Run{ID: "r1", Name: "r1", Owner: "alice"}); err != nil {
				t.Fatal(err)
			}
			s.rawDelete(t, bucketMeta, keyCheck)
			s.Close()
			return dir
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := tt.dir(t)
			other := filepath.Join(t.TempDir(), KeyringFile)
			if _, err := LoadKeyring(other); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, filepath.Join(dir, KeyringFile)); err != nil {
				t.Fatal(err)
			}
			wantOpenError(t, dir, "is not the keyring that sealed them", "restore that keyring from a backup")
		})
	}
}

// TestInitializedDataDirWithoutStoreRefused is issue 10 item 7: a data dir
// with a keyring whose database is gone, empty or damaged must not start as
// an empty store.
func TestInitializedDataDirWithoutStoreRefused(t *testing.T) {
	tests := map[string]struct {
		damage func(t *testing.T, path string)
		want   string
	}{
		"truncated": {damage: func(t *testing.T, path string) {
			os.Truncate(path, 0)
		}, want: "is empty (0 bytes)"},
		"missing": {damage: func(t *testing.T, path string) {
			os.Remove(path)
		}, want: "is missing"},
		"garbage": {damage: func(t *testing.T, path string) {
			os.WriteFile(path, bytes.Repeat([]byte("x"), 1<<16), 0o600)
		}, want: "the file is damaged"},
		"cut short": {damage: func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			os.Truncate(path, fi.Size()/2)
		}, want: "the file is damaged"},
		"another bbolt file": {damage: func(t *testing.T, path string) {
			os.Remove(path)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, want: "holds no hush data"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := storeWithSecret(t)
			path := filepath.Join(dir, DBFile)
			// Enough records that the file has pages to cut.
			s := openStore(t, dir)
			for i := range 200 {
				if _, err := s.CreateSecret(envSecret("alice", fmt.Sprintf("s%d", i), strings.Repeat("v", 512))); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			tt.damage(t, path)
			wantOpenError(t, dir, path, tt.want, "restore the data dir")
		})
	}
}

// TestFirstStartCrashStillStarts: a first start that dies after creating
// the database and before the keyring leaves a data dir that starts.
func TestFirstStartCrashStillStarts(t *testing.T) {
	dir := storeWithSecret(t)
	// As if the crash came before any secret and before the keyring: a
	// database with its marker and buckets only.
	os.Remove(filepath.Join(dir, KeyringFile))
	db, err := bolt.Open(filepath.Join(dir, DBFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		tx.DeleteBucket(bucketSecrets)
		tx.CreateBucket(bucketSecrets)
		tx.DeleteBucket(bucketValues)
		return tx.Bucket(bucketMeta).Delete(keyCheck)
	})
	db.Close()
	s := openStore(t, dir)
	if _, err := s.CreateSecret(envSecret("alice", "b", "value-b")); err != nil {
		t.Fatal(err)
	}
}

func TestDataDirModes(t *testing.T) {
	t.Run("new", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		openStore(t, dir)
		for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, DBFile): 0o600, filepath.Join(dir, KeyringFile): 0o600} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s: got mode %#o, want %#o", path, got, want)
			}
		}
	})
	t.Run("loose", func(t *testing.T) {
		dir := storeWithSecret(t)
		loose := map[string]os.FileMode{
			dir:                               0o755,
			filepath.Join(dir, DBFile):        0o644,
			filepath.Join(dir, RootTokenFile): 0o644,
			filepath.Join(dir, "logs"):        0o755,
		}
		os.WriteFile(filepath.Join(dir, RootTokenFile), []byte("x\n"), 0o644)
		os.Mkdir(filepath.Join(dir, "logs"), 0o755)
		for p, m := range loose {
			if err := os.Chmod(p, m); err != nil {
				t.Fatal(err)
			}
		}
		var logs bytes.Buffer
		s, err := Open(dir, hclog.New(&hclog.LoggerOptions{Output: &logs}))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		for p, old := range loose {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got&0o077 != 0 {
				t.Errorf("%s: got mode %#o, want no access for others", p, got)
			}
			if want := fmt.Sprintf("path=%s old_mode=%#o", p, old); !strings.Contains(logs.String(), want) {
				t.Errorf("no warning %q in:\n%s", want, logs.String())
			}
		}
	})
	t.Run("someone else's dir", func(t *testing.T) {
		// A shared dir given as data dir by mistake keeps its modes and
		// gets no store.
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "other.conf"), []byte("x"), 0o644)
		if err := os.Chmod(dir, fs.ModeSticky|0o777); err != nil {
			t.Fatal(err)
		}
		wantOpenError(t, dir, "holds other.conf, but no hush store: give the agent a dir of its own")
		if fi, _ := os.Stat(dir); fi.Mode()&(fs.ModePerm|fs.ModeSticky) != 0o777|fs.ModeSticky {
			t.Errorf("got mode %v, want it left drwxrwxrwt", fi.Mode())
		}
		if _, err := os.Stat(filepath.Join(dir, DBFile)); err == nil {
			t.Error("a store was created in someone else's dir")
		}
	})
}

// TestUnreadableRecord is issue 10 item 6: one record that does not open
// is reported with its name, owner, id and type, skipped by lists and by
// runs that do not need it, and deletable with its tombstone.
func TestUnreadableRecord(t *testing.T) {
	s := openStore(t, t.TempDir())
	for _, n := range []string{"a", "bad", "c"} {
		if _, err := s.CreateSecret(envSecret("alice", n, "value-"+n)); err != nil {
			t.Fatal(err)
		}
	}
	s.rawUpdate(t, func(b *bolt.Bucket) {
		v := bytes.Clone(b.Get([]byte("bad")))
		v[len(v)-1] ^= 1
		b.Put([]byte("bad"), v)
	})
	list, bad, err := s.ListSecrets("alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "c" {
		t.Errorf("got %d readable secrets, want a and c", len(list))
	}
	if len(bad) != 1 || bad[0].Name != "bad" || bad[0].Owner != "alice" || bad[0].ID != "01Jbad" || bad[0].Type != api.TypeEnv || !errors.Is(bad[0], ErrCorrupt) {
		t.Fatalf("got unreadable %v, want alice/bad (id 01Jbad, env) corrupt", bad)
	}
	secs, bad, err := s.OpenSecrets("alice", nil)
	if err != nil || len(secs) != 2 || len(bad) != 1 {
		t.Errorf("open all: got %d secrets, %d unreadable, %v; want 2, 1, nil", len(secs), len(bad), err)
	}
	secs, bad, err = s.OpenSecrets("alice", []string{"c"})
	if err != nil || len(secs) != 1 || string(secs[0].Data[api.FieldValue]) != "value-c" || len(bad) != 0 {
		t.Errorf("open c: got %d secrets, %d unreadable, %v; want c alone", len(secs), len(bad), err)
	}
	if _, bad, _ = s.OpenSecrets("alice", []string{"bad"}); len(bad) != 1 {
		t.Errorf("open bad: got %d unreadable, want 1", len(bad))
	}
	var missing *MissingError
	if _, _, err := s.OpenSecrets("alice", []string{"a", "nope"}); !errors.As(err, &missing) || missing.Names[0] != "nope" {
		t.Errorf("open a missing name: got %v, want MissingError naming nope", err)
	}
	grave, err := s.DeleteSecret("alice", "bad", "")
	if err != nil {
		t.Fatal(err)
	}
	if grave.ID != "01Jbad" {
		t.Errorf("got tombstone id %q, want 01Jbad", grave.ID)
	}
	if _, bad, _ := s.ListSecrets("alice"); len(bad) != 0 {
		t.Errorf("after delete: %d unreadable, want 0", len(bad))
	}
}

// TestEmptyValueRecord: a value record that is there but empty is a
// damaged secret, reported as such, not a crash of the agent.
func TestEmptyValueRecord(t *testing.T) {
	s := openStore(t, t.TempDir())
	if _, err := s.CreateSecret(envSecret("alice", "a", "value")); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketValues).Bucket([]byte("alice")).Put([]byte("a"), []byte{})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, bad, err := s.OpenSecrets("alice", nil); err != nil || len(bad) != 1 || !errors.Is(bad[0], ErrCorrupt) {
		t.Errorf("got %v, %v; want the secret reported corrupt", bad, err)
	}
}

func TestUnknownFormatNamed(t *testing.T) {
	s := openStore(t, t.TempDir())
	if _, err := s.CreateSecret(envSecret("alice", "a", "value")); err != nil {
		t.Fatal(err)
	}
	s.rawUpdate(t, func(b *bolt.Bucket) {
		v := bytes.Clone(b.Get([]byte("a")))
		v[0] = 9
		b.Put([]byte("a"), v)
	})
	_, err := s.GetSecretMeta("alice", "a")
	if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "alice/a") || !strings.Contains(err.Error(), "format 9") {
		t.Errorf("got %v, want ErrUnknownFormat naming alice/a and format 9", err)
	}
}

func TestSwappedValueFails(t *testing.T) {
	s := openStore(t, t.TempDir())
	for _, n := range []string{"a", "b"} {
		if _, err := s.CreateSecret(envSecret("alice", n, "value-"+n)); err != nil {
			t.Fatal(err)
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		vb := tx.Bucket(bucketValues).Bucket([]byte("alice"))
		return vb.Put([]byte("b"), bytes.Clone(vb.Get([]byte("a"))))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSecret("alice", "b"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("got %v, want ErrCorrupt", err)
	}
}

// TestListDoesNotOpenValues is issue 10 item 10: listing metadata reads no
// values, so its memory does not grow with their size.
func TestListDoesNotOpenValues(t *testing.T) {
	s := openStore(t, t.TempDir())
	big := strings.Repeat("x", api.MaxSecretSize)
	for i := range 16 {
		sec := envSecret("alice", string(rune('a'+i)), big)
		if _, err := s.CreateSecret(sec); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	list, _, err := s.ListSecrets("alice")
	runtime.ReadMemStats(&after)
	if err != nil || len(list) != 16 {
		t.Fatalf("got %d secrets, %v; want 16", len(list), err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("listing 16 secrets of 1 MiB allocated %d bytes, want under 1 MiB", got)
	}
	if list[0].Digest != s.Digest(envSecret("alice", "a", big)) {
		t.Error("listed digest differs from the digest of the content")
	}
}

func (s *Store) rawDelete(t *testing.T, bucket, key []byte) {
	t.Helper()
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete(key) }); err != nil {
		t.Fatal(err)
	}
}
