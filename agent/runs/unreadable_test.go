package runs

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// TestUnreadableSecretInRuns is issue 10 item 6 for runs: a secret that
// cannot be read fails a run that names it, with its name, and is left out
// of a run that takes all secrets, with a warning event.
func TestUnreadableSecretInRuns(t *testing.T) {
	dir := t.TempDir()
	h := &harness{t: t, dataDir: filepath.Join(dir, "data"), state: filepath.Join(dir, "state")}
	st, err := store.Open(h.dataDir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	h.store = st
	h.secret(envSecret("good", "GOOD", "good-value"))
	h.secret(envSecret("broken", "BROKEN", "broken-value"))
	st.Close()
	db, err := bolt.Open(filepath.Join(h.dataDir, store.DBFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("secrets")).Bucket([]byte("alice"))
		v := bytes.Clone(b.Get([]byte("broken")))
		v[len(v)-1] ^= 1
		return b.Put([]byte("broken"), v)
	})
	db.Close()
	if h.store, err = store.Open(h.dataDir, hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	h.m = h.manager()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.m.Shutdown(ctx)
		h.store.Close()
	})

	run, out := h.finish(h.submit("all", `echo "$GOOD/$BROKEN"`))
	if run.Status != api.RunCompleted || out != "good-value/\n" {
		t.Errorf("all secrets: got %s with output %q, want COMPLETED with good's value alone", run.Status, out)
	}
	warned := false
	for _, e := range run.Events {
		warned = warned || e.Type == "warning" && strings.Contains(e.Message, "secret broken cannot be read")
	}
	if !warned {
		t.Errorf("no warning event names broken: %+v", run.Events)
	}

	run, _ = h.finish(h.submit("named", "true", func(r *api.CreateRunRequest) { r.Secrets = []string{"good", "broken"} }))
	if run.Status != api.RunFailed || !strings.Contains(run.Error, "secret broken cannot be read") {
		t.Errorf("named: got %s, error %q; want FAILED naming broken", run.Status, run.Error)
	}
	run, out = h.finish(h.submit("good", `echo "$GOOD"`, func(r *api.CreateRunRequest) { r.Secrets = []string{"good"} }))
	if run.Status != api.RunCompleted || out != "good-value\n" {
		t.Errorf("good alone: got %s with %q, want COMPLETED with its value", run.Status, out)
	}
}
