package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

func testRun(owner, id, name string) *Run {
	return &Run{
		ID: id, Name: name, Owner: owner, Image: "busybox", Command: "echo hi",
		Status: api.RunPending, CreatedAt: time.Now().UTC(),
		Events: []RunEvent{{Time: time.Now().UTC(), Type: EventSubmitted, Message: "submitted"}},
	}
}

// TestUpgradeFrom01ReadsOldRun: the run hush 0.1 sealed whole is found by
// id and by name after the upgrade, with its status, exit code and events,
// and the store is marked format 3.
func TestUpgradeFrom01ReadsOldRun(t *testing.T) {
	s := openStore(t, copyDataDir01(t))
	byName, err := s.RunByName("alice", "old-run")
	if err != nil {
		t.Fatalf("by name: %v", err)
	}
	byID, err := s.GetRun("alice", byName.ID)
	if err != nil {
		t.Fatalf("by id: %v", err)
	}
	for _, r := range []*Run{byName, byID} {
		if r.Name != "old-run" || r.Owner != "alice" || r.Status != api.RunCompleted || r.ExitCode == nil || *r.ExitCode != 0 || r.EndedAt == nil {
			t.Errorf("got %+v, want old-run of alice, COMPLETED with exit code 0", r)
		}
		var types []string
		for _, e := range r.Events {
			types = append(types, string(e.Type))
		}
		if len(r.Events) < 3 || r.Events[0].Type != EventSubmitted || !strings.Contains(strings.Join(types, " "), "exited") {
			t.Errorf("got events %v, want submitted first and an exited one", types)
		}
	}
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyFormat); len(v) != 1 || v[0] != storeFormat {
			t.Errorf("got format marker %v, want %d", v, storeFormat)
		}
		if v := tx.Bucket(bucketRuns).Get([]byte(byID.ID)); v != nil {
			t.Error("the 0.1 record is still in place, want it moved")
		}
		return nil
	})
}

// TestUpgradeFromFormat2MovesRuns: a store of format 2 (runs sealed whole
// under runs/<id>) is migrated at Open; the oldest run of a name keeps it.
func TestUpgradeFromFormat2MovesRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, dir)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	code := 3
	olds := []*api.Run{
		{ID: "01B", Name: "twin", Owner: "bob", Status: api.RunFailed, ExitCode: &code, CreatedAt: t0.Add(time.Hour),
			MaxDuration: api.Duration(time.Minute), Events: []api.RunEvent{{Time: t0, Type: "submitted", Message: "m1"}, {Time: t0, Type: "exited", Message: "m2"}}},
		{ID: "01A", Name: "twin", Owner: "bob", Status: api.RunCompleted, CreatedAt: t0},
		{ID: "01C", Name: "other", Owner: "carol", Status: api.RunStopped, CreatedAt: t0},
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, r := range olds {
			plain, _ := json.Marshal(r)
			sealed, err := s.keyring.Seal(plain, legacyRunAAD(r.ID))
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketRuns).Put([]byte(r.ID), sealed); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte{2})
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, dir)
	r, err := s.GetRun("bob", "01B")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != api.RunFailed || *r.ExitCode != 3 || r.MaxDuration != time.Minute || len(r.Events) != 2 || r.Events[1].Type != EventExited {
		t.Errorf("got %+v, want the format 2 record's fields and events", r)
	}
	if r, err := s.RunByName("bob", "twin"); err != nil || r.ID != "01A" {
		t.Errorf("by name: got %v, %v; want the oldest twin, 01A", r, err)
	}
	if list, _ := s.ListRuns(""); len(list) != 3 {
		t.Errorf("got %d runs, want 3", len(list))
	}
}

// TestUnknownRunFormat: a run record or event of a format this agent does
// not know is an error naming the format, never misread.
func TestUnknownRunFormat(t *testing.T) {
	tests := map[string]struct {
		bucket func(tx *bolt.Tx) *bolt.Bucket
		key    []byte
	}{
		"record": {bucket: func(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketRuns).Bucket([]byte("alice")) }, key: []byte("01R")},
		"event": {bucket: func(tx *bolt.Tx) *bolt.Bucket {
			return tx.Bucket(bucketRunEvents).Bucket([]byte("alice")).Bucket([]byte("01R"))
		}, key: seqKey(0)},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, filepath.Join(t.TempDir(), "data"))
			if err := s.CreateRun(testRun("alice", "01R", "r")); err != nil {
				t.Fatal(err)
			}
			s.db.Update(func(tx *bolt.Tx) error {
				b := tt.bucket(tx)
				v := append([]byte(nil), b.Get(tt.key)...)
				v[0] = 9
				return b.Put(tt.key, v)
			})
			_, err := s.GetRun("alice", "01R")
			if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "format 9") {
				t.Errorf("got %v, want an unknown format error naming format 9", err)
			}
		})
	}
}

// TestNewerStoreFormatRefused: a store marked with a format past this
// agent's is refused, not misread.
func TestNewerStoreFormatRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, dir)
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte{storeFormat + 1}) })
	s.Close()
	wantOpenError(t, dir, fmt.Sprintf("format %d", storeFormat+1), "upgrade this agent")
}

// TestRunNamesAreUnique: a name taken by a run of the same owner is
// refused; another owner may use it; a deleted run frees its name.
func TestRunNamesAreUnique(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "data"))
	if err := s.CreateRun(testRun("alice", "01A", "x")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRun(testRun("alice", "01B", "x")); !errors.Is(err, ErrExists) {
		t.Errorf("same name: got %v, want ErrExists", err)
	}
	if err := s.CreateRun(testRun("bob", "01C", "x")); err != nil {
		t.Errorf("another owner: %v", err)
	}
	if err := s.DeleteRun("alice", "01A", "x"); err != nil {
		t.Fatal(err)
	}
	if taken, _ := s.RunNameTaken("alice", "x"); taken {
		t.Error("the name of a deleted run is still taken")
	}
	if _, err := s.GetRun("alice", "01A"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted run: got %v, want ErrNotFound", err)
	}
}

// TestSaveRunAppendsEvents: saving appends the new events and leaves the
// record alone unless asked.
func TestSaveRunAppendsEvents(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "data"))
	run := testRun("alice", "01A", "x")
	if err := s.CreateRun(run); err != nil {
		t.Fatal(err)
	}
	run.Status = api.RunRunning
	run.Events = append(run.Events, RunEvent{Type: EventStarted, Message: "started"})
	if err := s.SaveRun(run, 1, false); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRun("alice", "01A")
	if err != nil || got.Status != api.RunPending || len(got.Events) != 2 || got.Events[1].Type != EventStarted {
		t.Fatalf("got %+v, %v; want PENDING with 2 events", got, err)
	}
	if err := s.SaveRun(run, 2, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetRun("alice", "01A"); got.Status != api.RunRunning || len(got.Events) != 2 {
		t.Errorf("got %+v, want RUNNING with 2 events", got)
	}
}

// TestRunLookupOpensOneRun: finding a run by name, or checking a name,
// opens that run alone: it allocates as much among 1,000 runs of its
// owner and others as among none.
func TestRunLookupOpensOneRun(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "data"))
	if err := s.CreateRun(testRun("alice", "01TARGET", "target")); err != nil {
		t.Fatal(err)
	}
	measure := func() (byName, taken float64) {
		byName = testing.AllocsPerRun(20, func() {
			if _, err := s.RunByName("alice", "target"); err != nil {
				t.Fatal(err)
			}
		})
		taken = testing.AllocsPerRun(20, func() { s.RunNameTaken("alice", "free") })
		return byName, taken
	}
	oneName, oneTaken := measure()
	for i := range 1000 {
		owner := []string{"alice", "bob"}[i%2]
		if err := s.CreateRun(testRun(owner, fmt.Sprintf("01R%04d", i), fmt.Sprintf("r-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	manyName, manyTaken := measure()
	// Opening one more run costs dozens of allocations; the slack is for
	// a deeper B+tree.
	if manyName > oneName+10 || manyTaken > oneTaken+10 {
		t.Errorf("with 1,000 runs: %.0f and %.0f allocations, with 1: %.0f and %.0f; want about the same",
			manyName, manyTaken, oneName, oneTaken)
	}
}
