package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// TestListSecretsDoesNotOpenValues is issue 10 item 10: listing answers
// metadata without opening values, so its memory does not grow with them.
func TestListSecretsDoesNotOpenValues(t *testing.T) {
	st, srv := newTestServer(t)
	alice := client(t, st, srv, "alice")
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), api.MaxSecretSize)
	for i := range 16 {
		if _, err := st.CreateSecret(&store.Secret{ID: fmt.Sprintf("id%d", i), Name: fmt.Sprintf("big%d", i), Type: api.TypeMounted,
			Owner: "alice", Data: map[string][]byte{api.FieldValue: big}}); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	list, err := alice.ListSecrets(ctx, "")
	runtime.ReadMemStats(&after)
	if err != nil || len(list) != 16 {
		t.Fatalf("got %d secrets, %v; want 16", len(list), err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 2<<20 {
		t.Errorf("listing 16 secrets of 1 MiB allocated %d bytes in the agent and client, want under 2 MiB", got)
	}
}

// TestListSecretsManyInOrder lists more secrets than the store reads in one
// batch, with and without a type filter.
func TestListSecretsManyInOrder(t *testing.T) {
	st, srv := newTestServer(t)
	alice := client(t, st, srv, "alice")
	ctx := context.Background()
	const n = 700
	for i := range n {
		typ := api.TypeEnv
		if i%7 == 0 {
			typ = api.TypeMounted
		}
		sec := &store.Secret{ID: fmt.Sprintf("id%04d", i), Name: fmt.Sprintf("s%04d", i), Type: typ, Owner: "alice",
			Fields: map[string]string{api.FieldKey: "K"}, Data: map[string][]byte{api.FieldValue: []byte("v")}}
		if _, err := st.CreateSecret(sec); err != nil {
			t.Fatal(err)
		}
	}
	list, err := alice.ListSecrets(ctx, "")
	if err != nil || len(list) != n {
		t.Fatalf("got %d secrets, %v; want %d", len(list), err, n)
	}
	for i, s := range list {
		if want := fmt.Sprintf("s%04d", i); s.Name != want || s.Digest == "" {
			t.Fatalf("secret %d: got %s (digest %q), want %s with a digest", i, s.Name, s.Digest, want)
		}
	}
	mounted, err := alice.ListSecrets(ctx, api.TypeMounted)
	if err != nil || len(mounted) != n/7 {
		t.Errorf("mounted: got %d, %v; want %d", len(mounted), err, n/7)
	}
	empty := client(t, st, srv, "bob")
	if got, err := empty.ListSecrets(ctx, ""); err != nil || got == nil || len(got) != 0 {
		t.Errorf("no secrets: got %v, %v; want an empty list", got, err)
	}
}

// TestUnreadableSecret is issue 10 item 6 at the API: a secret that cannot
// be read is reported apart by the listing, which still answers; reading it
// says how to delete it; its owner or a management token deletes it.
func TestUnreadableSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	st, err := store.Open(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"good", "bad", "worse"} {
		if _, err := st.CreateSecret(&store.Secret{ID: "id-" + n, Name: n, Type: api.TypeEnv, Owner: "alice",
			Fields: map[string]string{api.FieldKey: "K"}, Data: map[string][]byte{api.FieldValue: []byte("v")}}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	damage(t, filepath.Join(dir, store.DBFile), "alice", "bad", "worse")

	st, srv := newTestServerAt(t, dir)
	alice, bob, root := client(t, st, srv, "alice"), client(t, st, srv, "bob"), client(t, st, srv, "root")
	ctx := context.Background()
	got, err := alice.ListSecretsReport(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Secrets) != 1 || got.Secrets[0].Name != "good" {
		t.Errorf("got %d readable secrets, want good alone", len(got.Secrets))
	}
	if len(got.Unreadable) != 2 || got.Unreadable[0].Name != "bad" || got.Unreadable[0].ID != "id-bad" ||
		got.Unreadable[0].Type != api.TypeEnv || !strings.Contains(got.Unreadable[0].Error, "tampered") {
		t.Errorf("got unreadable %+v, want bad (id-bad, env, tampered) and worse", got.Unreadable)
	}

	var apiErr *api.Error
	if _, err := alice.GetSecret(ctx, "bad"); !errors.As(err, &apiErr) || apiErr.Code != api.CodeSecretUnreadable ||
		!strings.Contains(err.Error(), "hush delete secret bad") {
		t.Errorf("get bad: got %v, want %s saying how to delete it", err, api.CodeSecretUnreadable)
	}
	if err := bob.DeleteUserSecret(ctx, "alice", "bad"); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("bob deletes alice's secret: got %v, want forbidden", err)
	}
	if err := alice.DeleteSecret(ctx, "bad"); err != nil {
		t.Errorf("owner deletes bad: %v", err)
	}
	if err := root.DeleteUserSecret(ctx, "alice", "worse"); err != nil {
		t.Errorf("management token deletes worse: %v", err)
	}
	graves, err := alice.ListTombstones(ctx)
	if err != nil || len(graves) != 2 {
		t.Errorf("tombstones: got %v, %v; want bad's and worse's", graves, err)
	}
	if got, err := alice.ListSecretsReport(ctx, ""); err != nil || len(got.Unreadable) != 0 || len(got.Secrets) != 1 {
		t.Errorf("after the deletes: got %+v, %v; want good alone", got, err)
	}
}

// damage flips the last byte of owner's secret records of names.
func damage(t *testing.T, path, owner string, names ...string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("secrets")).Bucket([]byte(owner))
		for _, n := range names {
			v := bytes.Clone(b.Get([]byte(n)))
			v[len(v)-1] ^= 1
			if err := b.Put([]byte(n), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
